"""Inbound webhook triggers: ``POST /hooks/{token}`` starts a flow from a back-end's event.

Management (API clients, PROTOCOLS.md §1): ``GET/POST /v1/{env}/triggers``,
``GET/PATCH/DELETE /v1/{env}/triggers/{id}``, ``POST .../rotate`` and ``POST .../dry-run``.
The trigger URL itself is authenticated by its unguessable token and, for signed triggers, by an
HMAC signature (:mod:`inbound_signing`). It answers 202 only once the core trigger service has
committed the invocation (``hub.services.triggers.start_flows``), so an acknowledged event is
never lost; every refusal is a problem document naming what failed. User docs:
``docs/webhooks-inbound.md``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.api.problems import FieldError, Problem, invalid, is_json_media_type
from hub.api.triggers import Invocation, StartResult
from hub.app import HubDep
from hub.core.customers import FieldIssue
from hub.logging import get_logger
from hub.services import triggers as core_triggers
from hub_plugins.webhooks import inbound_signing as signing
from hub_plugins.webhooks import inbound_store as store
from hub_plugins.webhooks.inbound_start import plan_start, translate
from hub_plugins.webhooks.mapping import MAX_KEY_LENGTH

log = get_logger(__name__)
TAGS = ["webhook triggers"]
SETTINGS = "webhooks"


class TriggerIn(msgspec.Struct, forbid_unknown_fields=True):
    """A trigger endpoint for a flow. ``mapping`` (see docs/webhooks-inbound.md) turns the body
    into a start; without one the body must be a start request itself. ``signed``: require an
    HMAC signature made with the secret the answer shows (once)."""

    flowConfigId: str
    name: str = ""
    signed: bool = False
    mapping: dict[str, Any] | None = None


class TriggerPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields to change; ``"mapping": {}`` removes the mapping."""

    flowConfigId: str | None = None
    name: str | None = None
    signed: bool | None = None
    mapping: dict[str, Any] | None = None


class Trigger(msgspec.Struct):
    id: str
    flowConfigId: str
    name: str
    signed: bool
    mapping: dict[str, Any] | None
    createdAt: str | None
    updatedAt: str | None
    tokenRotatedAt: str | None
    secretRotatedAt: str | None
    previousSecretExpiresAt: str | None


class TriggerCredentials(Trigger, omit_defaults=True):
    """A trigger with what is shown only when made: ``url`` (its token) and ``secret``."""

    url: str | None = None
    secret: str | None = None


class TriggerPage(msgspec.Struct):
    triggers: list[Trigger]
    nextCursor: str | None


class RotateIn(msgspec.Struct, forbid_unknown_fields=True):
    """Rotate the URL token (the old URL stops at once) and/or the secret (the old one keeps
    working for ``previousSecretValidSeconds``)."""

    token: bool = True
    secret: bool = True
    previousSecretValidSeconds: int = 0


class DryRunIn(msgspec.Struct, forbid_unknown_fields=True):
    """A sample ``body`` (any JSON), optional request ``headers`` (``Idempotency-Key``,
    ``webhook-id``) and optionally a candidate ``mapping`` to try instead of the stored one."""

    body: Any
    headers: dict[str, str] = {}
    mapping: dict[str, Any] | None = None


class DryRunStart(msgspec.Struct):
    flowInvocationId: str | None
    target: dict[str, Any]
    payload: dict[str, Any]


class DryRunResult(msgspec.Struct):
    valid: bool
    flowConfigId: str
    flowVersion: int | None
    flows: list[DryRunStart]
    errors: list[FieldError]


# --- management -----------------------------------------------------------------------------


def _invalid(exc: store.InvalidTrigger) -> Problem:
    first = exc.issues[0]
    return Problem(422, f"{first.field}: {first.reason}",
                   errors=[FieldError(i.field, i.reason) for i in exc.issues])


def _not_found(trigger_id: str) -> Problem:
    return Problem(404, f"no trigger {trigger_id!r}",
                   errors=[FieldError("path.triggerId", "no such trigger")])


def _url(hub: Any, request: Request[Any, Any, Any], token: str) -> str:
    base = hub.plugin_settings[SETTINGS].inbound_public_url or str(request.base_url)
    return f"{base.rstrip('/')}/hooks/{token}"


@post("/v1/{env:str}/triggers", opt={"permission": "flows:write"}, tags=TAGS, status_code=201,
      summary="Create a webhook trigger for a flow (shows its URL and secret once)")
async def create_trigger(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str],
                         data: JSONBody[TriggerIn]) -> TriggerCredentials:
    try:
        trigger, token, secret = await store.create_trigger(
            hub, env, flow_id=data.flowConfigId, name=data.name, signed=data.signed, mapping=data.mapping)
    except store.InvalidTrigger as exc:
        raise _invalid(exc) from None
    return msgspec.convert({**trigger, "url": _url(hub, request, token), "secret": secret},
                           TriggerCredentials)


@get("/v1/{env:str}/triggers", opt={"permission": "flows:read"}, tags=TAGS,
     summary="Webhook triggers, oldest first")
async def list_triggers(
    hub: HubDep, env: FromPath[str],
    flow_id: Annotated[str | None, QueryParameter(name="flowConfigId")] = None,
    cursor: Annotated[str | None, QueryParameter()] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> TriggerPage:
    try:
        page = await store.list_triggers(hub, env, flow_id=flow_id, cursor=cursor,
                                         limit=min(limit, hub.settings.max_page_size))
    except store.InvalidTrigger as exc:
        raise _invalid(exc) from None
    return msgspec.convert(page, TriggerPage)


@get("/v1/{env:str}/triggers/{trigger_id:str}", opt={"permission": "flows:read"}, tags=TAGS,
     summary="One webhook trigger (never its token or secret)")
async def get_trigger(hub: HubDep, env: FromPath[str], trigger_id: FromPath[str]) -> Trigger:
    try:
        return msgspec.convert(store.trigger_json(await store.get_trigger(hub, env, trigger_id)), Trigger)
    except store.TriggerNotFound:
        raise _not_found(trigger_id) from None


@patch("/v1/{env:str}/triggers/{trigger_id:str}", opt={"permission": "flows:write"}, tags=TAGS,
       summary="Change a webhook trigger's flow, name, signing or mapping")
async def update_trigger(hub: HubDep, env: FromPath[str], trigger_id: FromPath[str],
                         data: JSONBody[TriggerPatch]) -> Trigger:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
    try:
        return msgspec.convert(await store.update_trigger(hub, env, trigger_id, changes), Trigger)
    except store.InvalidTrigger as exc:
        raise _invalid(exc) from None
    except store.TriggerNotFound:
        raise _not_found(trigger_id) from None


@delete("/v1/{env:str}/triggers/{trigger_id:str}", opt={"permission": "flows:write"}, tags=TAGS,
        status_code=204, summary="Delete a webhook trigger (its URL answers 404 from now on)")
async def delete_trigger(hub: HubDep, env: FromPath[str], trigger_id: FromPath[str]) -> None:
    try:
        await store.delete_trigger(hub, env, trigger_id)
    except store.TriggerNotFound:
        raise _not_found(trigger_id) from None


@post("/v1/{env:str}/triggers/{trigger_id:str}/rotate", opt={"permission": "flows:write"}, tags=TAGS,
      status_code=200, summary="New URL token and/or secret (shown once)")
async def rotate_trigger(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str],
                         trigger_id: FromPath[str],
                         data: JSONBody[RotateIn | None] = None) -> TriggerCredentials:
    data = data or RotateIn()
    grace_limit = hub.plugin_settings[SETTINGS].inbound_max_secret_grace_seconds
    if not 0 <= data.previousSecretValidSeconds <= grace_limit:
        raise invalid("previousSecretValidSeconds", f"must be from 0 to {grace_limit} "
                      "(HUB_WEBHOOKS_INBOUND_MAX_SECRET_GRACE_SECONDS)")
    try:
        trigger, token, secret = await store.rotate(
            hub, env, trigger_id, token=data.token, secret=data.secret,
            grace_seconds=data.previousSecretValidSeconds)
    except store.InvalidTrigger as exc:
        raise _invalid(exc) from None
    except store.TriggerNotFound:
        raise _not_found(trigger_id) from None
    shown = {"url": _url(hub, request, token) if token else None, "secret": secret}
    return msgspec.convert({**trigger, **shown}, TriggerCredentials)


@post("/v1/{env:str}/triggers/{trigger_id:str}/dry-run", opt={"permission": "flows:read"}, tags=TAGS,
      status_code=200, summary="What a sample body would start, or why it would not (starts nothing)")
async def dry_run(hub: HubDep, env: FromPath[str], trigger_id: FromPath[str],
                  data: JSONBody[DryRunIn]) -> DryRunResult:
    try:
        row = await store.get_trigger(hub, env, trigger_id)
    except store.TriggerNotFound:
        raise _not_found(trigger_id) from None
    headers = {k.lower(): v for k, v in data.headers.items()}
    mapping = row["mapping"] if data.mapping is None else data.mapping
    settings = hub.plugin_settings[SETTINGS]
    flow_id = row["flow_id"]
    key, issues = _header_key(headers)
    plan = None
    if not issues:
        plan, issues = plan_start(row["id"], mapping, data.body, max_users=settings.inbound_max_users,
                                  header_key=key)
    version = None
    starts: list[DryRunStart] = []
    if plan is not None:
        try:
            version, checked = await core_triggers.check_flows(hub, env, flow_id, plan.items,
                                                               source="webhook")
            starts = [DryRunStart(item["flowInvocationId"], item["target"],
                                  {k: item[k] for k in ("variables", "metadata", "notificationDetail",
                                                        "cardOptions") if item.get(k)})
                      for item in checked]
        except core_triggers.TriggerError as exc:
            issues = translate(exc, plan, flow_id)[1]
    return DryRunResult(not issues, flow_id, version, starts, [_in_sample(i) for i in issues])


def _in_sample(issue: FieldIssue) -> FieldError:
    """A dry-run names the sample body's paths as fields of its own request: ``body.<path>``."""
    name = issue.field
    if name != "body" and not name.startswith(("mapping", "header.", "flowConfigId")):
        name = "body" + name if name.startswith("[") else f"body.{name}"
    return FieldError(name, issue.reason)


# --- the trigger URL ------------------------------------------------------------------------


def _header_key(headers: Any) -> tuple[str | None, list[FieldIssue]]:
    """The ``Idempotency-Key`` header, else ``webhook-id``: the event's de-duplication key."""
    for name in ("idempotency-key", "webhook-id"):
        value = headers.get(name)
        if value is not None:
            if not value or len(value) > MAX_KEY_LENGTH:
                return None, [FieldIssue(f"header.{name}", f"must be 1-{MAX_KEY_LENGTH} characters")]
            return value, []
    return None, []


async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    too_large = Problem(413, f"body: larger than {limit} bytes (HUB_WEBHOOKS_INBOUND_MAX_BODY_BYTES)",
                        errors=[FieldError("body", f"larger than {limit} bytes "
                                                   "(HUB_WEBHOOKS_INBOUND_MAX_BODY_BYTES)")])
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _unauthorized(exc: signing.SignatureError) -> Problem:
    return Problem(401, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)],
                   headers={"WWW-Authenticate": 'Signature realm="hub-webhooks"'})


def _unprocessable(status: int, issues: list[FieldIssue]) -> Problem:
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return Problem(status, f"{first.field}: {first.reason}{more}",
                   errors=[FieldError(i.field, i.reason) for i in issues])


@post("/hooks/{token:str}", tags=TAGS, status_code=202, request_max_body_size=None, security=[],
      summary="Start the trigger's flow from an event (202 once the start is committed)")
async def receive(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str]) -> StartResult:
    """The trigger URL. JSON body, mapped by the trigger's mapping; signed when the trigger says so."""
    settings = hub.plugin_settings[SETTINGS]
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and not is_json_media_type(media_type):
        reason = f"send application/json, not {media_type}"
        raise Problem(415, f"header.content-type: {reason}",
                      errors=[FieldError("header.content-type", reason)],
                      headers={"Accept-Post": "application/json"})
    row = await store.find_by_token(hub, token)
    if row is None:
        raise Problem(404, "no trigger has this URL", errors=[FieldError(
            "path.token", "no trigger has this URL (deleted, rotated or mistyped)")])
    raw = await _read_body(request, settings.inbound_max_body_bytes)
    verified = None
    if row["signed"]:
        tolerance = settings.inbound_signature_tolerance_seconds
        try:
            keys = store.signing_keys(hub, row)
        except ValueError as exc:  # sealed under another HUB_SECRET_KEY: the operator must rotate
            log.error("webhook_trigger_secret_unreadable", trigger_id=row["id"], error=str(exc),
                      hint="rotate the trigger's secret (HUB_SECRET_KEY changed)")
            raise Problem(503, "this trigger cannot check signatures; try again later") from None
        try:
            verified = signing.verify(request.headers, raw, keys, now=time.time(), tolerance=tolerance)
            await signing.remember(hub.redis, row["id"], verified, tolerance)
        except signing.SignatureError as exc:
            raise _unauthorized(exc) from None
    try:
        return await _start(hub, request, row, raw, settings)
    except BaseException:
        if verified is not None:  # not accepted: the sender may send this exact request again
            await signing.forget(hub.redis, row["id"], verified)
        raise


async def _start(hub: Any, request: Request[Any, Any, Any], row: dict[str, Any], raw: bytes,
                 settings: Any) -> StartResult:
    if not raw.strip():
        raise invalid("body", "required: send a JSON document", status=400)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        reason = "malformed JSON: " + str(exc).removeprefix("JSON is malformed: ")
        raise Problem(400, f"body: {reason}", errors=[FieldError("body", reason)]) from None
    key, issues = _header_key(request.headers)
    plan = None
    if not issues:
        plan, issues = plan_start(row["id"], row["mapping"], body, max_users=settings.inbound_max_users,
                                  header_key=key)
    if plan is None or issues:
        raise _unprocessable(422, issues)
    try:
        results = await core_triggers.start_flows(hub, row["environment_id"], row["flow_id"], plan.items,
                                                  source="webhook")
    except core_triggers.TriggerError as exc:
        raise _unprocessable(*translate(exc, plan, row["flow_id"])) from None
    return StartResult([msgspec.convert(r, Invocation) for r in results])


ROUTES: list[Any] = [create_trigger, list_triggers, get_trigger, update_trigger, delete_trigger,
                     rotate_trigger, dry_run, receive]
JOBS: list[Any] = []
