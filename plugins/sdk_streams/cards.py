"""The card as apps see it: in the feed, in socket frames and in the JavaScript SDK."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from hub.core.clock import now
from hub.db import tables
from hub.services.cards import card_json

if TYPE_CHECKING:
    from hub.app import Hub

SDK_CARD_FIELDS = (
    "cardInstanceId", "lifecycleId", "status", "priority", "targetStreamIds", "targetPlatforms",
    "templateId", "templateName", "content", "values", "flowConfigId", "flowInstanceId",
    "embargoUntil", "expiresAt", "snoozedUntil", "publishedAt", "updatedAt", "closedAt",
)


def sdk_card(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` (as :func:`hub.services.cards.card_json` makes it) with only what an app may see."""
    return {name: card.get(name) for name in SDK_CARD_FIELDS}


# --- the feed -------------------------------------------------------------------------------
# A feed's version is a per-user counter in Redis, bumped for every change of one of the user's
# cards (``hub_cards_changed``, after the change committed). It is read before the cards, so an
# answer's version never claims more than the answer holds, and an unchanged poll is answered
# 304 from Redis alone. A lost counter restarts from the clock in microseconds: never a version
# a client could still hold.

VERSION_TTL_SECONDS = 30 * 24 * 3600
K = tables.card.c
_ACTIVE = select(tables.card).where(K.environment_id == bindparam("env"), K.user_id == bindparam("user_id"),
                                    K.status == bindparam("status"))


def user_prefix(env: str, user: str) -> str:
    """The prefix of a user's keys in Redis. The hash tag keeps them in one slot of a Redis
    Cluster, so one script can bump the feed version and log the change for sockets."""
    return f"hub:sdk:{{{env}:{user}}}"


def version_key(env: str, user_id: str) -> str:
    return f"{user_prefix(env, user_id)}:feed"


async def feed_version(hub: Hub, env: str, user_id: str) -> str:
    """The current version of the user's feed (of every container)."""
    key = version_key(env, user_id)
    value = await hub.redis.get(key)
    if value is None:
        await hub.redis.set(key, time.time_ns() // 1000, nx=True, ex=VERSION_TTL_SECONDS)
        value = await hub.redis.get(key)
    return str(int(value or 0))


async def bump_feed_version(hub: Hub, env: str, user_id: str) -> None:
    """Something about the user's cards changed (for a card change, the socket event log's
    script does this too): their feed has a new version."""
    key = version_key(env, user_id)
    async with hub.redis.pipeline(transaction=True) as pipe:
        pipe.set(key, time.time_ns() // 1000, nx=True, ex=VERSION_TTL_SECONDS)
        pipe.incr(key)
        pipe.expire(key, VERSION_TTL_SECONDS)
        await pipe.execute()


async def feed_cards(hub: Hub, env: str, user_id: str, container_id: str, limit: int) -> list[dict[str, Any]]:
    """The user's visible cards in ``container_id``: status ``active`` (and not past expiry),
    priority 10 first, then most recently published first."""
    rows = await hub.db.read(_ACTIVE, {"env": env, "user_id": user_id, "status": "active"})
    current = now()
    shown = [r for r in rows if container_id in (r["streams"] or [])
             and (r["expires_at"] is None or r["expires_at"] > current)]
    shown.sort(key=lambda r: (-r["priority"], -(r["published_at"] or r["created_at"]).timestamp(), r["id"]))
    return [sdk_card(card_json(r)) for r in shown[:limit]]


def etag_matches(header: str | None, version: str) -> bool:
    """Whether an ``If-None-Match`` header names ``version`` (strong or weak) or is ``*``."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if tag == "*" or tag == version:
            return True
    return False
