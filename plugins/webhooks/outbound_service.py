"""Outbound webhook subscriptions: validation, storage, queueing events for delivery, replay.

The API layer (``outbound``) and the delivery job (``outbound_delivery``) both go through here.
An event reaches a subscription through its Redis inbox, then as a row in
``hub_webhooks_out_pending`` (insert-ignore on ``(subscription, event id)``, so announcing an
event twice queues it once); the delivery job deletes rows only once the receiver answered 2xx.
"""

from __future__ import annotations

import base64
import re
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError

from hub.core.clock import now
from hub.core.ids import ordered_uuid
from hub.db import insert_ignore, tables
from hub.net import UnsafeURL, check_url
from hub_plugins.webhooks import outbound_signing as signing
from hub_plugins.webhooks.outbound_tables import delivery, pending, subscription

if TYPE_CHECKING:
    from hub.app import Hub

S = subscription.c
P = pending.c
D = delivery.c
A = tables.analytics_event.c

EVENT_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# Hop-by-hop and framing headers belong to the connection, and the signature headers (and
# Authorization) to Hub's own scheme: a subscription may not set them.
RESERVED_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    "content-type", "content-encoding", "expect", "authorization", "cookie",
    "webhook-id", "webhook-timestamp", "webhook-signature",
})
MAX_HEADERS = 20
MAX_FILTER_ITEMS = 100


class NotFound(Exception):
    """No such subscription in this environment."""


class Invalid(Exception):
    """Bad input; ``field`` names it the way problem documents do."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status


def inbox_key(sub_id: str) -> str:
    """The Redis list where a subscription's announced event ids wait for its delivery job."""
    return f"hub:webhooks_out:inbox:{sub_id}"


def settings(hub: Hub) -> Any:
    return hub.plugin_settings["webhooks"]


def box(hub: Hub) -> signing.SecretBox:
    return signing.SecretBox(hub.secret_key)


# --- validation -----------------------------------------------------------------------------


async def check_target(hub: Hub, url: str, field: str = "url") -> str:
    parts = urlsplit(url)
    if len(url) > 2048 or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(field, "must be an http(s) URL of at most 2048 characters")
    if parts.username or parts.password:
        raise Invalid(field, "must not carry credentials; use the signature to authenticate")
    allow = hub.settings.allow_private_urls
    if parts.scheme != "https" and not allow:
        raise Invalid(field, "must be https")
    try:
        await check_url(url, allow_private=allow)
    except UnsafeURL as exc:
        raise Invalid(field, str(exc)) from None
    return url


def check_names(values: list[str], field: str, pattern: re.Pattern[str] | None) -> list[str]:
    if len(values) > MAX_FILTER_ITEMS:
        raise Invalid(field, f"at most {MAX_FILTER_ITEMS} items")
    for index, value in enumerate(values):
        if not value or len(value) > 64 or (pattern is not None and not pattern.fullmatch(value)) or any(
                ord(ch) < 32 for ch in value):
            what = "a kebab-case event name" if pattern is not None else "an id of 1-64 characters"
            raise Invalid(f"{field}[{index}]", f"must be {what}")
    return list(dict.fromkeys(values))


def check_headers(headers: dict[str, str], field: str = "headers") -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise Invalid(field, f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        lower = name.lower()
        if not HEADER_NAME.fullmatch(name):
            raise Invalid(f"{field}.{name[:64]}", "is not a valid header name")
        if lower in RESERVED_HEADERS or lower.startswith("proxy-"):
            raise Invalid(f"{field}.{name}", "is set by Hub or by the connection and cannot be overridden")
        if lower in seen:
            raise Invalid(f"{field}.{name}", "is given twice")
        seen.add(lower)
        if len(value) > 1024 or any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            raise Invalid(f"{field}.{name}", "must be at most 1024 characters without control characters")
    return dict(headers)


# --- reading --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def to_api(row: Any, pending_count: int) -> dict[str, Any]:
    return {
        "id": row.id, "url": row.url, "description": row.description,
        "eventTypes": list(row.event_types), "flowIds": list(row.flow_ids),
        "headers": dict(row.headers), "state": row.state, "pausedReason": row.paused_reason,
        "pausedAt": _iso(row.paused_at), "consecutiveFailures": row.consecutive_failures,
        "nextAttemptAt": _iso(row.next_attempt_at), "lastSuccessAt": _iso(row.last_success_at),
        "lastFailureAt": _iso(row.last_failure_at), "pendingEvents": pending_count,
        "createdAt": _iso(row.created_at), "updatedAt": _iso(row.updated_at),
    }


async def _pending_counts(conn: Any, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = await conn.execute(select(P.subscription_id, func.count()).where(
        P.subscription_id.in_(ids)).group_by(P.subscription_id))
    return {row[0]: int(row[1]) for row in rows}


async def load(conn: Any, env: str, sub_id: str) -> Any:
    row = (await conn.execute(select(subscription).where(
        S.environment_id == env, S.id == sub_id))).first()
    if row is None:
        raise NotFound(sub_id)
    return row


async def get_subscription(hub: Hub, env: str, sub_id: str) -> dict[str, Any]:
    async with hub.db.connect() as conn:
        row = await load(conn, env, sub_id)
        counts = await _pending_counts(conn, [row.id])
    return to_api(row, counts.get(row.id, 0))


def _encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}|{value}".encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, value = text.split("|", 1)
        if found != kind or not value or len(value) > 64:
            raise ValueError
        return value
    except ValueError:
        raise Invalid("query.cursor", "not a cursor this API returned") from None


async def list_subscriptions(hub: Hub, env: str, cursor: str | None, limit: int) -> dict[str, Any]:
    query = select(subscription).where(S.environment_id == env).order_by(S.id).limit(limit + 1)
    if cursor is not None:
        query = query.where(S.id > _decode_cursor("s1", cursor))
    async with hub.db.connect() as conn:
        rows = list(await conn.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        counts = await _pending_counts(conn, [r.id for r in rows])
    return {"webhooks": [to_api(r, counts.get(r.id, 0)) for r in rows],
            "nextCursor": _encode_cursor("s1", rows[-1].id) if more and rows else None}


async def list_deliveries(hub: Hub, env: str, sub_id: str, cursor: str | None, limit: int,
                          status: str | None = None) -> dict[str, Any]:
    """The delivery log of one subscription, newest first."""
    query = select(delivery).where(D.environment_id == env, D.subscription_id == sub_id)
    if cursor is not None:
        try:
            before = int(_decode_cursor("d1", cursor))
        except ValueError:
            raise Invalid("query.cursor", "not a cursor this API returned") from None
        query = query.where(D.id < before)
    if status is not None:
        query = query.where(D.status == status)
    async with hub.db.connect() as conn:
        await load(conn, env, sub_id)
        rows = list(await conn.execute(query.order_by(D.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"deliveries": [{
        "id": str(r.id), "webhookId": r.webhook_id, "kind": r.kind, "eventCount": r.event_count,
        "attempt": r.attempt, "status": r.status, "statusCode": r.status_code,
        "latencyMs": r.latency_ms, "responseSnippet": r.response_snippet, "error": r.error,
        "createdAt": _iso(r.created_at)} for r in rows],
        "nextCursor": _encode_cursor("d1", str(rows[-1].id)) if more and rows else None}


# --- writing --------------------------------------------------------------------------------


async def create_subscription(hub: Hub, env: str, data: dict[str, Any]) -> dict[str, Any]:
    """Store a subscription; the result carries its secret, the only time it is shown."""
    url = await check_target(hub, data["url"])
    event_types = check_names(data.get("eventTypes") or [], "eventTypes", EVENT_NAME)
    flow_ids = check_names(data.get("flowIds") or [], "flowIds", None)
    headers = check_headers(data.get("headers") or {})
    secret = signing.new_secret()
    stamp = now()
    row = {"id": ordered_uuid(), "environment_id": env, "url": url,
           "description": data.get("description") or "", "event_types": event_types,
           "flow_ids": flow_ids, "headers": headers, "secret": box(hub).seal(secret),
           "previous_secret": None, "previous_secret_until": None, "state": "active",
           "paused_reason": None, "paused_at": None, "consecutive_failures": 0,
           "next_attempt_at": None, "last_success_at": None, "last_failure_at": None,
           "created_at": stamp, "updated_at": stamp}
    limit = settings(hub).outbound_max_subscriptions
    async with hub.db.begin() as conn:
        count = (await conn.execute(select(func.count()).select_from(subscription).where(
            S.environment_id == env))).scalar_one()
        if count >= limit:
            raise Invalid("body", f"at most {limit} webhook subscriptions per environment", 409)
        await conn.execute(subscription.insert().values(row))
    forget(hub, env)
    async with hub.db.connect() as conn:
        created = await load(conn, env, row["id"])
    return {**to_api(created, 0), "secret": secret}


async def update_subscription(hub: Hub, env: str, sub_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Change what is given; ``rotateSecret`` makes a new secret (returned once) while the old
    one keeps signing for ``HUB_WEBHOOKS_OUTBOUND_SECRET_GRACE_SECONDS``."""
    values: dict[str, Any] = {}
    if "url" in data:
        values["url"] = await check_target(hub, data["url"])
    if "description" in data:
        values["description"] = data["description"]
    if "eventTypes" in data:
        values["event_types"] = check_names(data["eventTypes"], "eventTypes", EVENT_NAME)
    if "flowIds" in data:
        values["flow_ids"] = check_names(data["flowIds"], "flowIds", None)
    if "headers" in data:
        values["headers"] = check_headers(data["headers"])
    secret = None
    async with hub.db.begin() as conn:
        row = await load(conn, env, sub_id)
        if data.get("rotateSecret"):
            secret = signing.new_secret()
            grace = settings(hub).outbound_secret_grace_seconds
            values.update(secret=box(hub).seal(secret), previous_secret=row.secret if grace > 0 else None,
                          previous_secret_until=now() + timedelta(seconds=grace) if grace > 0 else None)
        values["updated_at"] = now()
        await conn.execute(update(subscription).where(S.id == sub_id).values(**values))
    forget(hub, env)
    result = await get_subscription(hub, env, sub_id)
    return {**result, "secret": secret} if secret else result


async def delete_subscription(hub: Hub, env: str, sub_id: str) -> None:
    async with hub.db.begin() as conn:
        await load(conn, env, sub_id)
        # Children first: SQLite enforces the foreign keys, but be explicit on every backend.
        await conn.execute(delete(pending).where(P.subscription_id == sub_id))
        await conn.execute(delete(delivery).where(D.subscription_id == sub_id))
        await conn.execute(delete(subscription).where(S.id == sub_id))
    await hub.redis.delete(inbox_key(sub_id))
    forget(hub, env)


async def set_state(hub: Hub, env: str, sub_id: str, state: str, reason: str | None) -> dict[str, Any]:
    """Pause (with a reason) or resume; resuming clears the failure count and backoff."""
    stamp = now()
    values: dict[str, Any] = {"state": state, "updated_at": stamp}
    if state == "paused":
        values.update(paused_reason=reason or "paused through the API", paused_at=stamp)
    else:
        values.update(paused_reason=None, paused_at=None, consecutive_failures=0, next_attempt_at=None)
    async with hub.db.begin() as conn:
        await load(conn, env, sub_id)
        await conn.execute(update(subscription).where(S.id == sub_id).values(**values))
    forget(hub, env)
    return await get_subscription(hub, env, sub_id)


async def replay(hub: Hub, env: str, sub_id: str, start: datetime, end: datetime) -> int:
    """Queue the stored analytics events of ``[start, end)`` that the subscription's filters
    match, with their original ids. Events already waiting are not queued twice."""
    if end <= start:
        raise Invalid("to", "must be later than from")
    async with hub.db.begin() as conn:
        row = await load(conn, env, sub_id)
        where = [A.environment_id == env, A.timestamp >= start, A.timestamp < end]
        if row.event_types:
            where.append(A.name.in_(list(row.event_types)))
        if row.flow_ids:
            where.append(A.flow_id.in_(list(row.flow_ids)))
        count = (await conn.execute(select(func.count()).select_from(tables.analytics_event)
                                    .where(and_(*where)))).scalar_one()
        limit = settings(hub).outbound_replay_max_events
        if count > limit:
            raise Invalid("to", f"the range holds {count} events, more than {limit}: replay a "
                          "shorter range")
        source = select(literal(sub_id), literal(env), A.id, literal(now(), type_=P.created_at.type)
                        ).where(and_(*where)).order_by(A.timestamp, A.id)
        stmt = _insert(conn).from_select(["subscription_id", "environment_id", "event_id", "created_at"],
                                         source).on_conflict_do_nothing(
            index_elements=["subscription_id", "event_id"])
        await conn.execute(stmt)
    return int(count)


def _insert(conn: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(pending)


# --- queueing announced events --------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    id: str
    active: bool
    event_types: frozenset[str]
    flow_ids: frozenset[str]

    def wants(self, event: dict[str, Any]) -> bool:
        if self.event_types and event.get("analyticsEvent") not in self.event_types:
            return False
        if self.flow_ids:
            flow = (event.get("platformContext") or {}).get("flowConfigId")
            return flow in self.flow_ids
        return True


# Per Hub, per environment: (expires at, active subscriptions). Only an optimisation: another
# process sees a change within HUB_WEBHOOKS_OUTBOUND_SUBSCRIPTION_CACHE_SECONDS.
_cache: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, list[Target]]]] = weakref.WeakKeyDictionary()


def forget(hub: Hub, env: str) -> None:
    _cache.get(hub, {}).pop(env, None)


async def targets_of(hub: Hub, env: str) -> list[Target]:
    """Every subscription of ``env``: paused ones keep queueing, and deliver when resumed."""
    per_env = _cache.setdefault(hub, {})
    found = per_env.get(env)
    if found is not None and found[0] > time.monotonic():
        return found[1]
    async with hub.db.connect() as conn:
        rows = await conn.execute(select(S.id, S.state, S.event_types, S.flow_ids).where(
            S.environment_id == env))
        targets = [Target(r.id, r.state == "active", frozenset(r.event_types), frozenset(r.flow_ids))
                   for r in rows]
    per_env[env] = (time.monotonic() + settings(hub).outbound_subscription_cache_seconds, targets)
    return targets


async def queue_event(hub: Hub, event: dict[str, Any]) -> list[str]:
    """Route ``event`` to the subscriptions of its environment that want it; returns the ids of
    the active ones, for the caller to push to their inboxes (``outbound_delivery.push``).

    Paused subscriptions keep queueing (delivered on resume), straight into the pending table:
    their inbox would only grow in Redis. Costs one cached lookup when nothing subscribes.
    """
    env = event.get("environmentId")
    if not isinstance(env, str) or not isinstance(event.get("id"), str):
        return []
    for attempt in (1, 2):
        wanting = [t for t in await targets_of(hub, env) if t.wants(event)]
        paused = [t.id for t in wanting if not t.active]
        if not paused:
            return [t.id for t in wanting]
        try:
            await add_pending(hub, env, [event["id"]], paused)
        except IntegrityError:
            if attempt == 2:
                raise
            forget(hub, env)  # a cached subscription was deleted meanwhile: read them again
            continue
        return [t.id for t in wanting if t.active]
    return []


async def add_pending(hub: Hub, env: str, event_ids: list[str], sub_ids: list[str]) -> None:
    """Insert pending rows (an event already waiting for a subscription is ignored)."""
    stamp = now()
    rows = [{"subscription_id": sub_id, "environment_id": env, "event_id": event_id, "created_at": stamp}
            for sub_id in sub_ids for event_id in event_ids]
    async with hub.db.begin() as conn:
        for start in range(0, len(rows), 500):
            await insert_ignore(conn, pending, rows[start:start + 500], ["subscription_id", "event_id"])
