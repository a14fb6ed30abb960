"""Outbound analytics webhooks: subscriptions, signed batched delivery, a delivery log, replay.

``/v1/{env}/webhooks`` (PROTOCOLS.md §1): create, list, get, update, delete, pause, resume, send
a test event, read the delivery log, replay a time range. Events come in through
:func:`analytics_event` (the ``hub_analytics_event`` hook); ``outbound_service`` stores and
queues, ``outbound_delivery`` sends. User documentation: ``docs/webhooks-outbound.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub_plugins.webhooks import outbound_delivery as sender
from hub_plugins.webhooks import outbound_service as service

if TYPE_CHECKING:
    from hub.app import Hub

TAGS = ["webhooks"]
READ = {"permission": "webhooks:read"}
WRITE = {"permission": "webhooks:write"}
BASE = "/v1/{env:str}/webhooks"
ONE = BASE + "/{webhook_id:str}"

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Description = Annotated[str, msgspec.Meta(max_length=500)]
Names = Annotated[list[str], msgspec.Meta(max_length=service.MAX_FILTER_ITEMS)]
Headers = Annotated[dict[str, str], msgspec.Meta(max_length=service.MAX_HEADERS)]
Stamp = Annotated[datetime, msgspec.Meta(tz=True)]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new subscription. Empty ``eventTypes`` / ``flowIds`` mean every event / every flow."""

    url: Url
    description: Description = ""
    eventTypes: Names = []
    flowIds: Names = []
    headers: Headers = {}


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True):
    """What to change (absent or null: unchanged). ``rotateSecret: true`` makes a new secret,
    returned in this answer only; the old one keeps signing for a grace period."""

    url: Url | None = None
    description: Description | None = None
    eventTypes: Names | None = None
    flowIds: Names | None = None
    headers: Headers | None = None
    rotateSecret: bool = False


class PauseIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True):
    """Re-deliver the stored events of ``[from, to)`` that match the filters, with their ids."""

    from_: Stamp = msgspec.field(name="from")
    to: Stamp


class Webhook(msgspec.Struct):
    id: str
    url: str
    description: str
    eventTypes: list[str]
    flowIds: list[str]
    headers: dict[str, str]
    state: Literal["active", "paused"]
    pausedReason: str | None
    pausedAt: str | None
    consecutiveFailures: int
    nextAttemptAt: str | None
    lastSuccessAt: str | None
    lastFailureAt: str | None
    pendingEvents: int
    createdAt: str | None
    updatedAt: str | None


class WebhookWithSecret(Webhook):
    """The signing secret appears here, at creation (and rotation), and never again."""

    secret: str


class WebhookPage(msgspec.Struct):
    webhooks: list[Webhook]
    nextCursor: str | None


class Delivery(msgspec.Struct):
    id: str
    webhookId: str
    kind: Literal["events", "test"]
    eventCount: int
    attempt: int
    status: Literal["delivered", "failed"]
    statusCode: int | None
    latencyMs: int
    responseSnippet: str | None
    error: str | None
    createdAt: str | None


class DeliveryPage(msgspec.Struct):
    deliveries: list[Delivery]
    nextCursor: str | None


class TestResult(msgspec.Struct):
    webhookId: str
    status: Literal["delivered", "failed"]
    statusCode: int | None
    latencyMs: int
    responseSnippet: str | None
    error: str | None


class Replayed(msgspec.Struct):
    queued: int


def _problem(exc: Exception, webhook_id: str = "") -> Problem:
    if isinstance(exc, service.NotFound):
        return Problem(404, f"no webhook {webhook_id!r}",
                       errors=[FieldError("path.webhookId", "no such webhook")])
    assert isinstance(exc, service.Invalid)
    return Problem(exc.status, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)])


def _check_id(webhook_id: str) -> None:
    if not webhook_id or len(webhook_id) > 36:
        raise Problem(404, "no such webhook", errors=[FieldError("path.webhookId", "no such webhook")])


async def _call(webhook_id: str, work: Any) -> Any:
    _check_id(webhook_id)
    try:
        return await work
    except (service.NotFound, service.Invalid) as exc:
        raise _problem(exc, webhook_id) from None


@get(BASE, opt=READ, tags=TAGS, summary="Webhook subscriptions of the environment")
async def list_webhooks(hub: HubDep, env: FromPath[str],
                        cursor: Annotated[str | None, QueryParameter()] = None,
                        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> WebhookPage:
    try:
        page = await service.list_subscriptions(hub, env, cursor, min(limit, hub.settings.max_page_size))
    except service.Invalid as exc:
        raise _problem(exc) from None
    return msgspec.convert(page, WebhookPage)


@post(BASE, opt=WRITE, tags=TAGS, status_code=201, summary="Create a webhook subscription")
async def create_webhook(hub: HubDep, env: FromPath[str], data: JSONBody[WebhookIn]) -> WebhookWithSecret:
    try:
        created = await service.create_subscription(hub, env, msgspec.to_builtins(data))
    except service.Invalid as exc:
        raise _problem(exc) from None
    return msgspec.convert(created, WebhookWithSecret)


@get(ONE, opt=READ, tags=TAGS, summary="One webhook subscription")
async def get_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str]) -> Webhook:
    return msgspec.convert(await _call(webhook_id, service.get_subscription(hub, env, webhook_id)), Webhook)


@patch(ONE, opt=WRITE, tags=TAGS, summary="Change a webhook subscription or rotate its secret")
async def update_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str],
                         data: JSONBody[WebhookPatch]) -> Response[Any]:
    changes = {k: v for k, v in msgspec.to_builtins(data).items() if v is not None}
    result = await _call(webhook_id, service.update_subscription(hub, env, webhook_id, changes))
    kind = WebhookWithSecret if result.get("secret") else Webhook
    return Response(msgspec.to_builtins(msgspec.convert(result, kind)))


@delete(ONE, opt=WRITE, tags=TAGS, status_code=204, summary="Delete a webhook subscription")
async def delete_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str]) -> None:
    await _call(webhook_id, service.delete_subscription(hub, env, webhook_id))


@post(ONE + "/pause", opt=WRITE, tags=TAGS, status_code=200, summary="Pause deliveries")
async def pause_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str],
                        data: JSONBody[PauseIn | None] = None) -> Webhook:
    """Events keep being queued while paused and are delivered on resume."""
    reason = data.reason if data is not None else None
    return msgspec.convert(await _call(webhook_id, service.set_state(hub, env, webhook_id, "paused", reason)),
                           Webhook)


@post(ONE + "/resume", opt=WRITE, tags=TAGS, status_code=200, summary="Resume deliveries")
async def resume_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str]) -> Webhook:
    """Clears the failure count and any backoff, then delivers what is pending."""
    _check_id(webhook_id)
    try:
        async with hub.db.connect() as conn:
            before = await service.load(conn, env, webhook_id)
        result = await service.set_state(hub, env, webhook_id, "active", None)
    except service.NotFound as exc:
        raise _problem(exc, webhook_id) from None
    if before.state == "paused" or before.next_attempt_at is not None:
        # No job is sending (paused, or waiting out a backoff): retry now.
        await hub.redis.delete(sender.owner_key(webhook_id))
    await sender.poke(hub, env, webhook_id)
    return msgspec.convert(result, Webhook)


@post(ONE + "/test", opt=WRITE, tags=TAGS, status_code=200, summary="Send a signed test event now")
async def test_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str]) -> TestResult:
    """Answers with what the receiver did; the attempt is in the delivery log too."""
    return msgspec.convert(await _call(webhook_id, sender.send_test(hub, env, webhook_id)), TestResult)


@get(ONE + "/deliveries", opt=READ, tags=TAGS, summary="Delivery log, newest first")
async def list_deliveries(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str],
                          cursor: Annotated[str | None, QueryParameter()] = None,
                          status: Annotated[Literal["delivered", "failed"] | None, QueryParameter()] = None,
                          limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> DeliveryPage:
    page = await _call(webhook_id, service.list_deliveries(
        hub, env, webhook_id, cursor, min(limit, hub.settings.max_page_size), status))
    return msgspec.convert(page, DeliveryPage)


@post(ONE + "/replay", opt=WRITE, tags=TAGS, status_code=202, summary="Re-deliver a time range")
async def replay_webhook(hub: HubDep, env: FromPath[str], webhook_id: FromPath[str],
                         data: JSONBody[ReplayIn]) -> Replayed:
    """Queues the stored events of ``[from, to)`` matching the filters, with their original ids
    (receivers de-duplicate on them); they go out after what is already pending."""
    queued = await _call(webhook_id, service.replay(hub, env, webhook_id, data.from_, data.to))
    if queued:
        await sender.poke(hub, env, webhook_id)
    return Replayed(queued)


ROUTES: list[Any] = [list_webhooks, create_webhook, get_webhook, update_webhook, delete_webhook,
                     pause_webhook, resume_webhook, test_webhook, list_deliveries, replay_webhook]
JOBS: list[Any] = [sender.webhooks_out_deliver, sender.webhooks_out_sweep]
# Keyword arguments for ``register`` per job: the sweeper is a safety net that runs every 15 s.
JOB_OPTIONS: dict[str, dict[str, Any]] = {
    sender.SWEEP_JOB: {"cron": {"second": {0, 15, 30, 45}}, "max_tries": 1},
}


async def analytics_event(hub: Hub, event: dict[str, Any]) -> None:
    """Queue ``event`` for every subscription that wants it, and make sure delivery runs."""
    active = await service.queue_event(hub, event)
    if active:
        await sender.push(hub, str(event["environmentId"]), str(event["id"]), active)
