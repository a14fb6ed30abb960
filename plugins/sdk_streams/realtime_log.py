"""Each user's card event log in Redis, and the channel that announces new entries.

Per user (``{env}`` / ``{user}``): a counter (``...:seq``, the newest event id), a sorted set of
frames scored by event id (``...:log``, the newest ``HUB_SDK_STREAMS_SOCKET_REPLAY_EVENTS``) and
one marker per recorded change (``...:evt:<eventId>``) so that a change announced twice is
logged once. One Lua script does all of it, publishes the frame and bumps the user's feed
version (``...:feed``, :mod:`cards`), so ids are given, logged and published in the same order,
atomically, in one call per change. The keys of one user share a hash tag (Redis Cluster keeps
them in one slot).

A published message is ``["<env>","<user>",<eventId>]`` + ``\\n`` + the frame: the subscriber
routes it without decoding the frame, and sends the frame's text as is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from hub.logging import get_logger
from hub_plugins.sdk_streams.cards import VERSION_TTL_SECONDS, sdk_card, user_prefix, version_key

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

VISIBLE = "active"

# KEYS: feed version, marker, seq, log. ARGV: now in microseconds, version ttl, frame tail (after
# the event id; empty: no frame, only the version), message head, channel, keep, ttl.
CHANGE_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] == '' then return {0, 0} end
local known = redis.call('GET', KEYS[2])
if known then return {tonumber(known), 0} end
local ttl = tonumber(ARGV[7])
local id = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], id, 'EX', ttl)
local frame = '{"type":"card","eventId":' .. id .. ',' .. ARGV[3]
redis.call('ZADD', KEYS[4], id, frame)
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[6]) + 1))
redis.call('EXPIRE', KEYS[4], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('PUBLISH', ARGV[5], ARGV[4] .. id .. ']\\n' .. frame)
return {id, 1}
"""


def channel_name(redis: Any) -> str:
    """Pub/sub channels are not scoped to a Redis database, so the channel names the database."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"hub:sdk:socket:db{db}"


def change_of(card: dict[str, Any], previous: dict[str, Any] | None) -> str | None:
    """``added``, ``updated`` or ``removed`` as the app sees it, or ``None`` when it never saw it."""
    before = previous is not None and previous.get("status") == VISIBLE
    now = card.get("status") == VISIBLE
    if now:
        return "updated" if before else "added"
    return "removed" if before else None


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: int
    new: bool


def _change_call(hub: Hub, env: str, user: str, change_id: str, frame: dict[str, Any] | None
                 ) -> tuple[list[str], list[Any]]:
    """The keys and arguments of :data:`CHANGE_SCRIPT` for one change."""
    settings = hub.plugin_settings["sdk_streams"]
    prefix = user_prefix(env, user)
    tail = b"" if frame is None else msgspec.json.encode(frame)[1:]  # the fields after "{"
    head = msgspec.json.encode([env, user])[:-1] + b","
    return ([version_key(env, user), f"{prefix}:evt:{change_id}", f"{prefix}:seq", f"{prefix}:log"],
            [time.time_ns() // 1000, VERSION_TTL_SECONDS, tail, head, channel_name(hub.redis),
             max(1, settings.socket_replay_events), max(1, settings.socket_replay_ttl_seconds)])


def _frame(card: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The socket frame of a card change, or ``None`` when apps never saw the card."""
    change = change_of(card, previous)
    if change is None:
        return None
    return {"change": change, "cardInstanceId": card["cardInstanceId"], "card": sdk_card(card)}


def _env(card: dict[str, Any], context: dict[str, Any]) -> str:
    return str(context.get("environmentId") or card["environmentId"])


async def card_changed(hub: Hub, card: dict[str, Any], previous: dict[str, Any] | None,
                       context: dict[str, Any]) -> Recorded | None:
    """A card change: the user's feed gets a new version and, when apps saw the card, the change
    gets the user's next event id, is logged and published, once per ``context["eventId"]``.
    ``None`` when apps never saw the card."""
    frame, env = _frame(card, previous), _env(card, context)
    keys, args = _change_call(hub, env, str(card["userId"]), str(context["eventId"]), frame)
    event_id, new = await hub.redis.register_script(CHANGE_SCRIPT)(keys, args)
    if frame is None:
        return None
    if not new:
        log.debug("sdk_socket_duplicate_change", env=env, event_id=context["eventId"])
    return Recorded(int(event_id), bool(new))


async def queue_card_changed(hub: Hub, pipe: Any, card: dict[str, Any], previous: dict[str, Any] | None,
                             context: dict[str, Any]) -> None:
    """:func:`card_changed` as a command of ``pipe`` (a Redis pipeline), so that a batch of
    changes costs one round trip."""
    keys, args = _change_call(hub, _env(card, context), str(card["userId"]), str(context["eventId"]),
                              _frame(card, previous))
    # One script object per pipeline: the pipeline checks each object it holds is loaded.
    script = getattr(pipe, "_hub_change_script", None)
    if script is None:
        script = pipe._hub_change_script = pipe.register_script(CHANGE_SCRIPT)
    await script(keys, args, client=pipe)  # queued, not sent


@dataclass(frozen=True, slots=True)
class Replay:
    newest: int
    """The user's newest event id (0 before the first one, or once the log has expired)."""
    frames: list[tuple[int, str]]
    """The retained frames after the id asked for, oldest first."""
    complete: bool
    """Whether ``frames`` holds every event after the id asked for (nothing was trimmed)."""


async def replay(hub: Hub, env: str, user: str, after: int) -> Replay:
    """The frames of ``user`` with an id greater than ``after``, read in one transaction."""
    prefix = user_prefix(env, user)
    async with hub.redis.pipeline(transaction=True) as pipe:
        pipe.get(f"{prefix}:seq")
        pipe.zrange(f"{prefix}:log", 0, 0, withscores=True)
        pipe.zrangebyscore(f"{prefix}:log", f"({after}", "+inf", withscores=True)
        seq, oldest, entries = await pipe.execute()
    newest = int(seq or 0)
    frames = [(int(score), member.decode()) for member, score in entries]
    if after > newest:
        complete = False
    elif after == newest:
        complete = True
    else:
        first = int(oldest[0][1]) if oldest else None
        complete = first is not None and first <= after + 1
    return Replay(newest, frames, complete)


async def newest_id(hub: Hub, env: str, user: str) -> int:
    return int(await hub.redis.get(f"{user_prefix(env, user)}:seq") or 0)
