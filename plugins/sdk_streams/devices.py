"""Push devices of end users: registered by apps (``POST /v1/{env}/sdk/devices``), read by push
plugins (:func:`valid_devices`), marked invalid when a provider refuses a token
(:func:`mark_invalid`), and deleted with the customer when they are erased.

A token belongs to one device row per environment and platform: registering it again (after a
reinstall, or by another user who signed in on the same phone) moves it to that user and makes
it valid again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.db import lock_for_write, upsert_statement
from hub_plugins.sdk_streams.tables import device

if TYPE_CHECKING:
    from hub.app import Hub

D = device.c
PLATFORMS = ("ios", "android", "web")
STATES = ("valid", "invalid")
TOKEN_MAX = 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")  # bundle ids, package names, APNs topics


class DeviceError(ValueError):
    """A registration that cannot be accepted; ``issues`` name the fields."""

    def __init__(self, issues: list[FieldIssue]):
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def device_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A device as the API and push plugins see it."""
    return {"deviceId": row["id"], "userId": row["user_id"], "platform": row["platform"],
            "token": row["token"], "appId": row["app_id"], "apnsTopic": row["apns_topic"],
            "state": row["state"], "lastError": row["last_error"],
            "createdAt": _iso(row["created_at"]), "updatedAt": _iso(row["updated_at"]),
            "invalidatedAt": _iso(row["invalidated_at"])}


def check_device(platform: Any, token: Any, app_id: Any = None, apns_topic: Any = None) -> list[FieldIssue]:
    """Issues with a registration, named by body field."""
    issues = []
    if platform not in PLATFORMS:
        issues.append(FieldIssue("platform", f"must be one of {', '.join(PLATFORMS)}"))
    if not isinstance(token, str) or not token.strip() or len(token) > TOKEN_MAX:
        issues.append(FieldIssue("token", f"must be a non-empty string of at most {TOKEN_MAX} characters"))
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in token):
        issues.append(FieldIssue("token", "must not contain control characters"))
    for name, value in (("appId", app_id), ("apnsTopic", apns_topic)):
        if value is not None and (not isinstance(value, str) or not _NAME.fullmatch(value)):
            issues.append(FieldIssue(name, "must be 1-255 letters, digits, '.', '_' or '-' "
                                           "(a bundle id or package name)"))
    if apns_topic is not None and platform != "ios":
        issues.append(FieldIssue("apnsTopic", "applies to ios devices only"))
    return issues


async def register_device(hub: Hub, env: str, user_id: str, *, platform: str, token: str,
                          app_id: str | None = None, apns_topic: str | None = None
                          ) -> tuple[dict[str, Any], bool]:
    """Register (or re-register) a push token for ``user_id``; returns (device, created).

    Raises :class:`DeviceError`. A customer keeps at most ``HUB_SDK_STREAMS_DEVICES_PER_USER``
    devices: registering one more removes the least recently registered.
    """
    issues = check_device(platform, token, app_id, apns_topic)
    if issues:
        raise DeviceError(issues)
    stamp = now()
    limit = hub.plugin_settings["sdk_streams"].devices_per_user
    async with hub.db.begin() as conn:
        await lock_for_write(conn)
        existing = (await conn.execute(select(D.id).where(
            D.environment_id == env, D.platform == platform, D.token == token))).scalar()
        values = {"user_id": user_id, "app_id": app_id, "apns_topic": apns_topic, "state": "valid",
                  "last_error": None, "updated_at": stamp, "invalidated_at": None}
        statement = upsert_statement(conn, device).values(
            id=existing or str(uuid.uuid4()), environment_id=env, platform=platform, token=token,
            created_at=stamp, **values)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["environment_id", "platform", "token"], set_=values))
        row = (await conn.execute(select(device).where(
            D.environment_id == env, D.platform == platform, D.token == token))).mappings().one()
        mine = (await conn.execute(select(D.id).where(D.environment_id == env, D.user_id == user_id)
                                   .order_by(D.updated_at.desc(), D.id.desc()))).scalars().all()
        if len(mine) > limit:
            await conn.execute(delete(device).where(D.id.in_(list(mine[limit:]))))
    return device_json(row), existing is None


async def list_devices(hub: Hub, env: str, user_id: str) -> list[dict[str, Any]]:
    """Every device of the customer, most recently registered first."""
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(device).where(D.environment_id == env, D.user_id == user_id)
                                   .order_by(D.updated_at.desc(), D.id.desc()))).mappings().all()
    return [device_json(r) for r in rows]


async def valid_devices(hub: Hub, env: str, user_id: str,
                        platforms: Sequence[str] = PLATFORMS) -> list[dict[str, Any]]:
    """The customer's devices push can go to: state ``valid``, on one of ``platforms``."""
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(device).where(
            D.environment_id == env, D.user_id == user_id, D.platform.in_(list(platforms)),
            D.state == "valid").order_by(D.updated_at.desc(), D.id.desc()))).mappings().all()
    return [device_json(r) for r in rows]


async def valid_devices_of(hub: Hub, env: str, user_ids: Sequence[str],
                           platforms: Sequence[str] = PLATFORMS) -> list[dict[str, Any]]:
    """The valid devices of several customers on ``platforms`` (the ``hub_push_devices`` hook):
    ``deviceId``, ``userId``, ``platform``, ``token``, ``appId``, ``apnsTopic``, ``state``."""
    wanted = [p for p in platforms if p in PLATFORMS]
    if not user_ids or not wanted:
        return []
    found: list[dict[str, Any]] = []
    ids = list(dict.fromkeys(user_ids))
    async with hub.db.connect() as conn:
        for start in range(0, len(ids), 500):
            columns = (D.id, D.user_id, D.platform, D.token, D.app_id, D.apns_topic)
            rows = await conn.execute(select(*columns).where(
                D.environment_id == env, D.user_id.in_(ids[start:start + 500]), D.platform.in_(wanted),
                D.state == "valid").order_by(D.user_id, D.updated_at.desc(), D.id.desc()))
            found += [{"deviceId": i, "userId": u, "platform": p, "token": t, "appId": a, "apnsTopic": topic,
                       "state": "valid"} for i, u, p, t, a, topic in rows]
    return found


async def count_devices(hub: Hub, env: str) -> dict[str, dict[str, int]]:
    """How many devices the environment has, by platform and state (every pair present)."""
    counts = {p: dict.fromkeys(STATES, 0) for p in PLATFORMS}
    async with hub.db.connect() as conn:
        for platform, state, n in await conn.execute(
                select(D.platform, D.state, func.count()).where(D.environment_id == env)
                .group_by(D.platform, D.state)):
            counts.setdefault(platform, dict.fromkeys(STATES, 0))[state] = int(n)
    return counts


async def mark_invalid(hub: Hub, env: str, device_id: str, error: str) -> bool:
    """A provider refused the device's token (unregistered, expired, wrong topic): stop using it
    until the app registers it again. ``error`` is kept as ``lastError``. Returns whether the
    device exists."""
    stamp = now()
    async with hub.db.begin() as conn:
        result = await conn.execute(update(device).where(
            D.environment_id == env, D.id == device_id,
        ).values(state="invalid", last_error=error[:2000], updated_at=stamp, invalidated_at=stamp))
    return bool(result.rowcount)


async def delete_device(hub: Hub, env: str, user_id: str, device_id: str) -> bool:
    """Delete one of the customer's devices (signing out); False when it is not theirs."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(device).where(
            D.environment_id == env, D.user_id == user_id, D.id == device_id))
    return bool(result.rowcount)


async def delete_user_devices(hub: Hub, env: str, user_id: str) -> int:
    """Delete every device of the customer (they were erased); returns how many."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(device).where(D.environment_id == env, D.user_id == user_id))
    return int(result.rowcount or 0)
