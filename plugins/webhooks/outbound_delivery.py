"""Delivering queued analytics events to a subscription: batched, signed, in order, at least once.

The hook (:func:`push`) appends an announced event's id to each active subscription's Redis
*inbox* and makes sure its delivery job runs, in one Redis round trip; a database write per
event would cost more than the whole delivery. The job moves the inbox into pending rows in
bulk (trimming the inbox only after they are committed), then sends. This relies on Redis
keeping what it acknowledged, as the job queue itself does.

One job at a time delivers for a subscription: whoever holds its Redis *owner key* (a random
token with a lease). :func:`poke` takes the key if it is free and enqueues a job carrying the
token; a poke while the key is held does nothing, because the holder re-checks for pending
events after releasing the key. The job takes the oldest pending events (waiting up to the
linger time for a batch to fill), gives them a batch id, the ``webhook-id`` of every attempt,
and POSTs them. On 2xx the pending rows are deleted; on failure the same batch is tried again
after an exponential, jittered backoff (or ``Retry-After``), and after
``HUB_WEBHOOKS_OUTBOUND_PAUSE_AFTER_FAILURES`` consecutive failures the subscription is paused.
A worker killed mid-delivery leaves the rows and the owner key; arq runs the job again with the
same token, which still owns the key, and it sends the same batch again.
"""
from __future__ import annotations

import asyncio
import random
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from sqlalchemy import Text, cast, delete, exists, insert, or_, select, update

from hub import queue
from hub.core.analytics import build_event
from hub.core.clock import now
from hub.core.ids import ordered_uuid
from hub.db import tables
from hub.logging import get_logger
from hub.net import UnsafeURL, check_url
from hub.services.analytics import record_events
from hub.services.outbox import transaction
from hub_plugins.webhooks import outbound_service as service
from hub_plugins.webhooks import outbound_signing as signing
from hub_plugins.webhooks.outbound_tables import delivery, pending, subscription

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

DELIVER_JOB = "webhooks_out_deliver"
SWEEP_JOB = "webhooks_out_sweep"
SNIPPET_BYTES = 512
USER_AGENT = "hub-webhooks/1"
PAUSED_EVENT = "webhook-subscription-paused"
S, P, D, A = subscription.c, pending.c, delivery.c, tables.analytics_event.c

_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] or not held then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def owner_key(sub_id: str) -> str:
    return f"hub:webhooks_out:owner:{sub_id}"


def _lease(hub: Hub, defer: float = 0.0) -> int:
    # Long enough to outlive a job that arq re-runs after a worker died (job timeout + 10 s).
    return int(defer + 2 * hub.settings.job_timeout_seconds + 60)


async def poke(hub: Hub, env: str, sub_id: str, defer: float = 0.0) -> bool:
    """Make sure a delivery job will run for the subscription; ``False`` if one already owns it."""
    token = ordered_uuid().replace("-", "")
    if not await hub.redis.set(owner_key(sub_id), token, nx=True, ex=_lease(hub, defer)):
        return False
    when = datetime.now(UTC) + timedelta(seconds=defer) if defer > 0 else None
    await queue.enqueue(hub.redis, DELIVER_JOB, [env, sub_id, token], f"webhooks_out:{sub_id}:{token}", when)
    return True


class _Pusher:
    """Group commit for :func:`push`: while one Redis round trip is in flight, the pushes that
    arrive wait and then go together in the next one. A push returns only once its own round
    trip is done, so nothing is acknowledged before Redis has it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting: list[tuple[str, str, list[str], bool, asyncio.Future[None]]] = []

    async def push(self, hub: Hub, env: str, event_id: str, sub_ids: list[str], start: bool) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((env, event_id, sub_ids, start, done))
        async with self.lock:
            if done.done():  # carried by an earlier round trip
                return done.result()
            batch, self.waiting = self.waiting, []
            try:
                await _push_batch(hub, [(env, event_id, subs, go) for env, event_id, subs, go, _ in batch])
            except BaseException as exc:
                for *_, future in batch:
                    if future is not done:
                        future.set_exception(exc)
                raise
            for *_, future in batch:
                future.set_result(None)
        return None


_pushers: weakref.WeakKeyDictionary[Any, _Pusher] = weakref.WeakKeyDictionary()


async def push(hub: Hub, env: str, event_id: str, sub_ids: list[str], *, start: bool = True) -> None:
    """Put an announced event in the inboxes of active subscriptions and make sure their delivery
    jobs run (``start``): one Redis round trip, shared with concurrent pushes."""
    if sub_ids:
        pusher = _pushers.get(hub)
        if pusher is None:
            pusher = _pushers[hub] = _Pusher()
        await pusher.push(hub, env, event_id, sub_ids, start)


async def _push_batch(hub: Hub, items: list[tuple[str, str, list[str], bool]]) -> None:
    inboxes: dict[str, list[str]] = {}
    owners: dict[str, str] = {}  # subscription -> environment, for those to start
    for env, event_id, sub_ids, start in items:
        for sub_id in sub_ids:
            inboxes.setdefault(sub_id, []).append(event_id)
            if start:
                owners[sub_id] = env
    tokens = {sub_id: ordered_uuid().replace("-", "") for sub_id in owners}
    async with hub.redis.pipeline(transaction=False) as pipe:
        for sub_id, event_ids in inboxes.items():
            pipe.rpush(service.inbox_key(sub_id), *event_ids)
        for sub_id, token in tokens.items():
            pipe.set(owner_key(sub_id), token, nx=True, ex=_lease(hub))
        results = await pipe.execute()
    for (sub_id, token), taken in zip(tokens.items(), results[len(inboxes):], strict=True):
        if taken:
            await queue.enqueue(hub.redis, DELIVER_JOB, [owners[sub_id], sub_id, token],
                                f"webhooks_out:{sub_id}:{token}")


async def _ingest(hub: Hub, row: Any, most: int) -> int:
    """Move event ids from the subscription's Redis inbox to pending rows (trimmed from the inbox
    only after the rows are committed; a repeat is ignored by the unique key)."""
    key = service.inbox_key(row.id)
    moved = 0
    while moved < most:
        raw = await hub.redis.lrange(key, 0, 999)
        if not raw:
            break
        ids = list(dict.fromkeys(v.decode() if isinstance(v, bytes) else str(v) for v in raw))
        await service.add_pending(hub, row.environment_id, ids, [row.id])
        await hub.redis.ltrim(key, len(raw), -1)
        moved += len(raw)
    return moved


# One HTTP client per Hub: building one loads the CA bundle, which costs more than a delivery.
_clients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def client_for(hub: Hub) -> httpx.AsyncClient:
    client = _clients.get(hub)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=service.settings(hub).outbound_timeout_seconds,
                                   follow_redirects=False, limits=httpx.Limits(max_connections=100))
        _clients[hub] = client
        hub.on_close(client.aclose)
    return client


async def _claim(hub: Hub, sub_id: str, token: str) -> bool:
    return bool(await hub.redis.eval(_CLAIM, 1, owner_key(sub_id), token, str(_lease(hub))))


async def _release(hub: Hub, sub_id: str, token: str) -> None:
    await hub.redis.eval(_RELEASE, 1, owner_key(sub_id), token)


# --- one HTTP attempt -----------------------------------------------------------------------


@dataclass
class Outcome:
    status_code: int | None
    latency_ms: int
    snippet: str | None
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def signing_secrets(hub: Hub, row: Any) -> list[str]:
    box = service.box(hub)
    found = [box.open(row.secret)]
    if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now():
        found.append(box.open(row.previous_secret))
    return found


async def post(hub: Hub, client: httpx.AsyncClient, row: Any, msg_id: str, body: bytes) -> Outcome:
    """POST one signed delivery; never raises for what the receiver or the network does."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        if not hub.settings.allow_private_urls:  # DNS may have changed since the URL was checked
            await check_url(row.url, allow_private=False)
    except UnsafeURL as exc:
        return Outcome(None, elapsed(), None, f"not sent: {exc}")
    stamp = int(time.time())
    headers = {**row.headers, "content-type": "application/json", "user-agent": USER_AGENT,
               "webhook-id": msg_id, "webhook-timestamp": str(stamp),
               "webhook-signature": signing.signature_header(signing_secrets(hub, row), msg_id, stamp, body)}
    try:
        async with client.stream("POST", row.url, content=body, headers=headers) as response:
            snippet = b""
            async for chunk in response.aiter_bytes():
                snippet += chunk
                if len(snippet) >= SNIPPET_BYTES:
                    break
    except httpx.TimeoutException:
        return Outcome(None, elapsed(), None, f"no answer within {client.timeout.read} s")
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
    code = response.status_code
    error = None
    if 300 <= code < 400:
        # Never followed, wherever they lead: a redirect could point a delivery at a private
        # address that the URL check would refuse.
        target = response.headers.get("location", "")[:200] or "no Location"
        error = f"answered {code} redirecting to {target}: redirects are not followed (set the final URL)"
    elif not 200 <= code < 300:
        error = f"answered {code}"
    retry = retry_after_seconds(response.headers.get("retry-after")) if code in (429, 503) else None
    return Outcome(code, elapsed(), snippet[:SNIPPET_BYTES].decode(errors="replace"), error, retry)


def backoff(hub: Hub, failures: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: ``Retry-After`` when given, else exponential with jitter."""
    s = service.settings(hub)
    cap = float(s.outbound_max_backoff_seconds)
    if retry_after is not None:
        return min(cap, retry_after)
    return min(cap, s.outbound_backoff_base_seconds * 2 ** min(failures - 1, 30)) * random.uniform(0.5, 1.0)


def _log_row(row: Any, msg_id: str, kind: str, count: int, attempt: int, outcome: Outcome) -> dict[str, Any]:
    return {"subscription_id": row.id, "environment_id": row.environment_id, "webhook_id": msg_id,
            "kind": kind, "event_count": count, "attempt": attempt,
            "status": "delivered" if outcome.ok else "failed", "status_code": outcome.status_code,
            "latency_ms": outcome.latency_ms, "response_snippet": outcome.snippet,
            "error": outcome.error, "created_at": now()}


def payload(kind: str, msg_id: str, row: Any, events: list[dict[str, Any]] | list[str]) -> bytes:
    """The delivery body; ``events`` as dicts, or as JSON texts straight from the database (the
    stored event is sent as stored, without decoding and encoding it again)."""
    if events and isinstance(events[0], str):
        head = msgspec.json.encode({"type": kind, "webhookId": msg_id, "environmentId": row.environment_id,
                                    "subscriptionId": row.id})
        return head[:-1] + b',"events":[' + ",".join(events).encode() + b"]}"
    return msgspec.json.encode({"type": kind, "webhookId": msg_id, "environmentId": row.environment_id,
                                "subscriptionId": row.id, "events": events})


# --- the delivery job -----------------------------------------------------------------------


@dataclass
class Batch:
    id: str
    events: list[str]  # the stored events as JSON texts, in queue order


async def _batch_events(hub: Hub, row: Any, batch_id: str) -> list[str]:
    """What a batch holds, read back by its id: what is sent is exactly what is marked."""
    query = (select(cast(A.body, Text)).select_from(pending.join(tables.analytics_event, A.id == P.event_id))
             .where(P.subscription_id == row.id, P.batch_id == batch_id,
                    A.environment_id == row.environment_id).order_by(P.seq))
    async with hub.db.connect() as conn:
        return [r[0] for r in await conn.execute(query)]


async def _next_batch(hub: Hub, row: Any, check_formed: bool, after: str | None = None) -> Batch | None:
    """The batch to send: one already formed (a retry after a failure or a dead worker, sent
    again unchanged, with its id) or a new one of the oldest pending events. ``after`` is the
    batch in flight, which is not the next one even though it is still formed."""
    s = service.settings(hub)
    await _ingest(hub, row, 10 * s.outbound_batch_size)
    if check_formed:
        async with hub.db.connect() as conn:
            formed = (await conn.execute(select(P.batch_id).where(
                P.subscription_id == row.id, P.batch_id.is_not(None),
                *([P.batch_id != after] if after else [])).order_by(P.seq).limit(1))).scalar()
        if formed is not None:
            return Batch(formed, await _batch_events(hub, row, formed))
    query = select(P.seq, P.created_at).where(
        P.subscription_id == row.id, P.batch_id.is_(None)).order_by(P.seq).limit(s.outbound_batch_size)
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query)).all()
    if not rows:
        return None
    linger = s.outbound_linger_ms / 1000
    if len(rows) < s.outbound_batch_size and linger > 0:
        waited = (now() - rows[0].created_at).total_seconds()
        if waited < linger:
            await asyncio.sleep(linger - max(0.0, waited))
            await _ingest(hub, row, 10 * s.outbound_batch_size)
            async with hub.db.connect() as conn:
                rows = (await conn.execute(query)).all()
    batch_id = "msg_" + ordered_uuid().replace("-", "")
    # A range, not a list of ids: cheaper, and a row committed into the range meanwhile simply
    # joins this batch (the batch is read back by its id before it is sent).
    async with hub.db.begin() as conn:
        await conn.execute(update(pending).where(
            P.subscription_id == row.id, P.batch_id.is_(None), P.seq >= rows[0].seq, P.seq <= rows[-1].seq,
        ).values(batch_id=batch_id))
    return Batch(batch_id, await _batch_events(hub, row, batch_id))


async def _deliver_batch(hub: Hub, client: httpx.AsyncClient, row: Any, batch: Batch) -> bool:
    events = batch.events
    if not events:  # erased with their customer since they were queued: nothing to send
        async with hub.db.begin() as conn:
            await conn.execute(delete(pending).where(P.subscription_id == row.id, P.batch_id == batch.id))
        return True
    attempt = row.consecutive_failures + 1
    outcome = await post(hub, client, row, batch.id, payload("analytics.events", batch.id, row, events))
    stamp = now()
    async with transaction(hub) as tx:
        await tx.conn.execute(insert(delivery).values(
            _log_row(row, batch.id, "events", len(events), attempt, outcome)))
        if outcome.ok:
            await tx.conn.execute(delete(pending).where(P.subscription_id == row.id,
                                                        P.batch_id == batch.id))
            await tx.conn.execute(update(subscription).where(S.id == row.id).values(
                consecutive_failures=0, next_attempt_at=None, last_success_at=stamp))
            return True
        limit = service.settings(hub).outbound_pause_after_failures
        if outcome.status_code == 410 or attempt >= limit:
            reason = ("the receiver answered 410 Gone" if outcome.status_code == 410
                      else f"{attempt} consecutive failed deliveries")
            await _pause(hub, tx, row, f"{reason}; last: {outcome.error}", attempt)
        else:
            delay = backoff(hub, attempt, outcome.retry_after)
            await tx.conn.execute(update(subscription).where(S.id == row.id).values(
                consecutive_failures=attempt, last_failure_at=stamp,
                next_attempt_at=stamp + timedelta(seconds=delay)))
            log.info("webhook_delivery_failed", subscription=row.id, attempt=attempt,
                     error=outcome.error, retry_in=round(delay, 2))
    service.forget(hub, row.environment_id)
    return False


async def _pause(hub: Hub, tx: Any, row: Any, reason: str, failures: int) -> None:
    stamp = now()
    await tx.conn.execute(update(subscription).where(S.id == row.id).values(
        state="paused", paused_reason=reason, paused_at=stamp, consecutive_failures=failures,
        last_failure_at=stamp, next_attempt_at=None, updated_at=stamp))
    event = build_event(PAUSED_EVENT, user_id=None, timestamp=stamp, properties={
        "subscriptionId": row.id, "reason": reason, "consecutiveFailures": failures})
    await record_events(tx, row.environment_id, [event],
                        announce=bool(hub.pm.hook.hub_analytics_event.get_hookimpls()))
    log.warning("webhook_subscription_paused", subscription=row.id, environment=row.environment_id,
                reason=reason)


async def _due_pending(hub: Hub, sub_id: str) -> bool:
    """Whether the subscription is active, not backing off, and has something to send."""
    due = select(S.id).where(S.id == sub_id, S.state == "active",
                             or_(S.next_attempt_at.is_(None), S.next_attempt_at <= now()))
    async with hub.db.connect() as conn:
        if (await conn.execute(due)).first() is None:
            return False
        if (await conn.execute(select(exists().where(P.subscription_id == sub_id)))).scalar():
            return True
    return bool(await hub.redis.llen(service.inbox_key(sub_id)))


async def webhooks_out_deliver(ctx: dict[str, Any], env: str, sub_id: str, token: str) -> int:
    """Job: deliver a subscription's pending events while this job owns it; returns how many.

    While a batch is in flight the next one is formed (marked, read back), so the receiver's
    answer and the database work overlap; it is sent only after the previous one got a 2xx,
    and if that failed it stays formed and goes out, unchanged, after the retried one.
    """
    hub: Hub = ctx["hub"]
    if not await _claim(hub, sub_id, token):
        return 0
    return await _deliver_loop(hub, env, sub_id, token)


async def _deliver_loop(hub: Hub, env: str, sub_id: str, token: str) -> int:
    budget_end = time.monotonic() + max(1.0, hub.settings.job_timeout_seconds / 2)
    delivered = 0
    client = client_for(hub)
    check_formed, renew_at = True, time.monotonic() + 10
    ahead: asyncio.Task[Batch | None] | None = None
    try:
        while True:
            async with hub.db.connect() as conn:
                row = (await conn.execute(select(subscription).where(
                    S.environment_id == env, S.id == sub_id))).first()
            if row is None or row.state != "active":
                break
            wait = (row.next_attempt_at - now()).total_seconds() if row.next_attempt_at else 0.0
            if wait > 0 or time.monotonic() > budget_end:
                # Backing off, or taking turns with other jobs: a fresh job takes over later.
                if ahead is not None:
                    await ahead
                    ahead = None
                await _release(hub, sub_id, token)
                await poke(hub, env, sub_id, defer=max(wait, 0.0))
                return delivered
            if time.monotonic() > renew_at:  # renew the lease
                await _claim(hub, sub_id, token)
                renew_at = time.monotonic() + 10
            batch = None
            if ahead is not None:
                batch, ahead = await ahead, None
            if batch is None:
                batch = await _next_batch(hub, row, check_formed)
            if batch is None:
                break
            # After a failure (or a dead worker) the batch formed ahead of the failed one is
            # still formed: it goes next, before anything newer, so events arrive in order.
            ahead = asyncio.create_task(_next_batch(hub, row, check_formed, after=batch.id))
            check_formed = not await _deliver_batch(hub, client, row, batch)
            if check_formed:  # failed: the batch formed ahead waits its turn, formed
                await ahead
                ahead = None
            else:
                delivered += len(batch.events)
    finally:
        if ahead is not None:
            await ahead
    await _release(hub, sub_id, token)
    if await _due_pending(hub, sub_id):  # queued after we last looked: make sure someone sends it
        await poke(hub, env, sub_id)
    return delivered


async def webhooks_out_sweep(ctx: dict[str, Any]) -> int:
    """Job (every 15 s): poke subscriptions whose pending events nobody is delivering (their
    job was lost with Redis, say), and drop delivery log rows past their retention."""
    hub: Hub = ctx["hub"]
    stamp = now()
    query = select(S.id, S.environment_id, exists().where(P.subscription_id == S.id)).where(
        S.state == "active", or_(S.next_attempt_at.is_(None), S.next_attempt_at <= stamp))
    async with hub.db.connect() as conn:
        active = (await conn.execute(query)).all()
    async with hub.redis.pipeline(transaction=False) as pipe:
        for sub_id, _env, _pending in active:
            pipe.llen(service.inbox_key(sub_id))
        inboxes = await pipe.execute() if active else []
    poked = 0
    for (sub_id, env, has_pending), waiting in zip(active, inboxes, strict=True):
        if has_pending or waiting:
            poked += await poke(hub, env, sub_id)
    cutoff = stamp - timedelta(days=service.settings(hub).outbound_delivery_log_days)
    async with hub.db.begin() as conn:
        await conn.execute(delete(delivery).where(D.created_at < cutoff))
    return poked


async def send_test(hub: Hub, env: str, sub_id: str) -> dict[str, Any]:
    """POST a signed ``webhook-test`` event now (whatever the state) and log the attempt."""
    async with hub.db.connect() as conn:
        row = await service.load(conn, env, sub_id)
    event = build_event("webhook-test", user_id=None, timestamp=now(),
                        properties={"message": "a test delivery from Hub"})
    msg_id = "msg_" + ordered_uuid().replace("-", "")
    outcome = await post(hub, client_for(hub), row, msg_id, payload("webhook.test", msg_id, row, [event]))
    async with hub.db.begin() as conn:
        await conn.execute(insert(delivery).values(_log_row(row, msg_id, "test", 1, 1, outcome)))
    return {"webhookId": msg_id, "status": "delivered" if outcome.ok else "failed",
            "statusCode": outcome.status_code, "latencyMs": outcome.latency_ms,
            "responseSnippet": outcome.snippet, "error": outcome.error}
