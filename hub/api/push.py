"""Push API: ``GET /v1/{env}/push/health`` (devices and send outcomes per provider) and
``GET /v1/{env}/push/notifications`` (what was sent, scheduled, skipped or cancelled, and why)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.params import FromPath, QueryParameter

from hub.api.problems import invalid
from hub.app import HubDep
from hub.core.clock import now
from hub.core.push import STATUSES
from hub.hookspecs import hookimpl
from hub.services import push as service

TAGS = ["push"]


class PushHealth(msgspec.Struct):
    """``devices``: platform -> {valid, invalid}; ``sends``: provider -> outcome -> count since
    ``since``; ``notifications``: status -> count created since ``since``; ``providers``: the
    plugins that send push."""

    environmentId: str
    since: str
    devices: dict[str, dict[str, int]]
    sends: dict[str, dict[str, int]]
    notifications: dict[str, int]
    providers: list[str]


class Delivery(msgspec.Struct):
    deviceId: str
    platform: str | None
    provider: str
    status: str
    detail: str
    attempts: int
    providerMessageId: str | None
    at: str | None


class Notification(msgspec.Struct):
    notificationId: str
    status: str
    scenario: str | None
    cardInstanceId: str | None
    userId: str
    dueAt: str | None
    rescheduledBasedOnEndUserPrefs: bool
    attempts: int
    detail: str | None
    sent: int
    deliveries: list[Delivery]
    sentAt: str | None


@get("/v1/{env:str}/push/health", opt={"permission": "push:read"}, tags=TAGS,
     summary="Devices by platform and state, send outcomes by provider")
async def push_health(hub: HubDep, env: FromPath[str],
                      hours: Annotated[int, QueryParameter(ge=1, le=24 * 90)] = 24) -> PushHealth:
    """Send outcomes and notifications counted over the last ``hours`` (default 24)."""
    found = await service.health(hub, env, now() - timedelta(hours=hours))
    return msgspec.convert(found, PushHealth)


@get("/v1/{env:str}/push/notifications", opt={"permission": "push:read"}, tags=TAGS,
     summary="Push notifications, newest first, with each device's outcome")
async def list_notifications(
    hub: HubDep, env: FromPath[str],
    user_id: Annotated[str | None, QueryParameter(name="userId")] = None,
    card_id: Annotated[str | None, QueryParameter(name="cardInstanceId")] = None,
    status: Annotated[str | None, QueryParameter()] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> list[Notification]:
    if status is not None and status not in STATUSES:
        raise invalid("query.status", f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    found = await service.list_notifications(hub, env, user_id=user_id, card_id=card_id, status=status,
                                             limit=limit)
    return msgspec.convert(found, list[Notification])


@hookimpl
def hub_register_routes(register: Any) -> None:
    register(push_health)
    register(list_notifications)
