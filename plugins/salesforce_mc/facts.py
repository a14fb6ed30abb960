"""What Hub knows about a customer at once, for execute's ``reachable`` and the decision split.

- push device: a *valid* device of any platform (``hub_push_devices``, so every plugin's devices count);
- seen: the app talked to Hub as this customer (the SDK sets ``lastSeenAt``), optionally within N days;
- open card: a card of a given flow that is still open (active, embargoed or snoozed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, exists, literal_column, select

from hub.core.clock import now
from hub.core.lifecycle import OPEN_STATES
from hub.db import tables
from hub.plugins import call_hook
from hub_plugins.sdk_streams.tables import device

if TYPE_CHECKING:
    from hub.app import Hub

PLATFORMS = ["ios", "android", "web"]
SDK_STREAMS = "hub_plugins.sdk_streams.hooks"
CU = tables.customer.c
DV = device.c
CA = tables.card.c

_LAST_SEEN = select(CU.last_seen_at).where(CU.environment_id == bindparam("env"),
                                           CU.user_id == bindparam("user_id"))
# States as literals: the fast read path compiles a statement once and binds only named values.
_OPEN_CARD = select(exists().where(
    CA.environment_id == bindparam("env"), CA.user_id == bindparam("user_id"),
    CA.status.in_([literal_column(f"'{state}'") for state in sorted(OPEN_STATES)]),
    CA.flow_id == bindparam("flow_id")).label("open"))


async def has_push_device(hub: Hub, env: str, user_id: str) -> bool:
    lists = await call_hook(hub.pm, "hub_push_devices", hub=hub, environment_id=env,
                            user_ids=[user_id], platforms=PLATFORMS)
    return any(lists)


async def last_seen(hub: Hub, env: str, user_id: str) -> datetime | None:
    rows = await hub.db.read(_LAST_SEEN, {"env": env, "user_id": user_id})
    return rows[0]["last_seen_at"] if rows else None


async def seen_within(hub: Hub, env: str, user_id: str, days: int | None) -> bool:
    seen = await last_seen(hub, env, user_id)
    if seen is None:
        return False
    return days is None or seen >= now() - timedelta(days=days)


async def has_open_card(hub: Hub, env: str, user_id: str, flow_id: str) -> bool:
    rows = await hub.db.read(_OPEN_CARD, {"env": env, "user_id": user_id, "flow_id": flow_id})
    return bool(rows and rows[0]["open"])


_REACHABLE = select(
    exists().where(DV.environment_id == bindparam("env"), DV.user_id == bindparam("user_id"),
                   DV.state == literal_column("'valid'")).label("device"),
    exists().where(CU.environment_id == bindparam("env"), CU.user_id == bindparam("user_id"),
                   CU.last_seen_at.is_not(None)).label("seen"))


async def reachable(hub: Hub, env: str, user_id: str) -> bool:
    """Execute's ``reachable``: Hub can reach the customer now, by push or in the app (seen by the SDK).

    On every contact, so one read on the database's fast path when the built-in device registry
    (``sdk_streams``) is loaded; otherwise every plugin's devices are asked for."""
    if hub.pm.has_plugin(SDK_STREAMS):
        rows = await hub.db.read(_REACHABLE, {"env": env, "user_id": user_id})
        return bool(rows and (rows[0]["device"] or rows[0]["seen"]))
    return await has_push_device(hub, env, user_id) or await seen_within(hub, env, user_id, None)
