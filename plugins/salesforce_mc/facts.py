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

if TYPE_CHECKING:
    from hub.app import Hub

PLATFORMS = ["ios", "android", "web"]
CU = tables.customer.c
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


async def reachable(hub: Hub, env: str, user_id: str) -> bool:
    """Execute's ``reachable``: Hub can reach the customer now, by push or in the app (seen by the SDK)."""
    return await has_push_device(hub, env, user_id) or await seen_within(hub, env, user_id, None)
