"""Delivering a batch's results to Marketo: ``POST callbackUrl``, retried, every attempt recorded.

The body was built and stored when the last lead was done, so every attempt (and a run after a
worker was killed) sends the same bytes, with ``x-api-key: <apiCallBackKey>`` and
``x-callback-token: <token>``. Any 2xx is delivered. A connection error, a timeout, 408, 429 or
a 5xx is retried: a few times within the job (tenacity, exponential backoff with jitter), then
by a later job (through the outbox, deferred by a longer exponential, jittered backoff) until
``HUB_MARKETO_CALLBACK_MAX_ATTEMPTS``. Another 4xx, or a callback URL that resolves to a
private address (unless ``HUB_ALLOW_PRIVATE_URLS``), fails the callback at once. Each attempt's
status code and error are written on the batch.
"""

from __future__ import annotations

import random
import secrets
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from sqlalchemy import select, update
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from hub.core.clock import now
from hub.logging import get_logger
from hub.net import UnsafeURL, check_url
from hub.services.outbox import transaction
from hub_plugins.marketo.batches import RUN_JOB, run_job_id, sealer
from hub_plugins.marketo.settings import MarketoSettings
from hub_plugins.marketo.tables import batch as batch_table

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)
B = batch_table.c
USER_AGENT = "Hub-Marketo/1.0"
RETRYABLE_CODES = {408, 425, 429}
# Within one job the waits stay short; longer waits go to a deferred job instead.
IN_JOB_MAX_WAIT = 10.0

_clients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def client_for(hub: Hub) -> httpx.AsyncClient:
    """One HTTP client per Hub (building one loads the CA bundle)."""
    client = _clients.get(hub)
    if client is None or client.is_closed:
        timeout = hub.plugin_settings["marketo"].callback_timeout_seconds
        client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, limits=httpx.Limits(max_connections=50)
        )
        _clients[hub] = client
        hub.on_close(client.aclose)
    return client


@dataclass
class Outcome:
    """One attempt: the answer's status code (None: no answer) and what went wrong."""

    status_code: int | None
    error: str | None
    retryable: bool

    @property
    def ok(self) -> bool:
        return self.error is None


class _TryAgain(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


async def post(hub: Hub, url: str, body: bytes, api_key: str, token: str) -> Outcome:
    """One POST of the callback; never raises for what Marketo or the network does."""
    try:
        await check_url(url, allow_private=hub.settings.allow_private_urls)
    except UnsafeURL as exc:
        return Outcome(None, f"callbackUrl refused: {exc}", retryable=False)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "x-api-key": api_key,
        "x-callback-token": token,
    }
    client = client_for(hub)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return Outcome(None, f"no answer within {client.timeout.read} s", retryable=True)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__, retryable=True)
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(code, None, retryable=False)
    snippet = response.text[:300].strip()
    error = f"answered {code}" + (f": {snippet}" if snippet else "")
    return Outcome(code, error, retryable=code >= 500 or code in RETRYABLE_CODES)


def backoff(settings: MarketoSettings, attempts: int) -> float:
    """Seconds before the next job's attempts: exponential in the attempts so far, with jitter."""
    base = settings.callback_backoff_base_seconds * 2.0 ** min(attempts - 1, 30)
    return min(settings.callback_max_backoff_seconds, base) * random.uniform(0.5, 1.0)


async def _record(hub: Hub, env: str, batch_id: str, outcome: Outcome) -> int:
    """Write one attempt on the batch; the attempts so far."""
    stamp = now()
    values: dict[str, Any] = {
        "callback_attempts": B.callback_attempts + 1,
        "callback_last_code": outcome.status_code,
        "callback_last_error": outcome.error,
        "updated_at": stamp,
    }
    if outcome.ok:
        values.update(state="completed", callback_status="sent", callback_next_at=None, completed_at=stamp)
    async with hub.db.begin() as conn:
        await conn.execute(
            update(batch_table).where(B.environment_id == env, B.id == batch_id).values(values)
        )
        attempts = (
            await conn.execute(select(B.callback_attempts).where(B.environment_id == env, B.id == batch_id))
        ).scalar_one()
    return int(attempts)


async def _give_up_or_defer(hub: Hub, env: str, batch_id: str, outcome: Outcome, attempts: int) -> str:
    settings: MarketoSettings = hub.plugin_settings["marketo"]
    stamp = now()
    async with transaction(hub) as tx:
        if outcome.retryable and attempts < settings.callback_max_attempts:
            when = stamp + timedelta(seconds=backoff(settings, attempts))
            await tx.conn.execute(
                update(batch_table)
                .where(B.environment_id == env, B.id == batch_id)
                .values(callback_next_at=when, updated_at=stamp)
            )
            await tx.enqueue(
                RUN_JOB,
                [env, batch_id],
                job_id=f"{run_job_id(env, batch_id)}:retry:{attempts}",
                defer_until=when,
            )
            state = "calling_back"
        else:
            await tx.conn.execute(
                update(batch_table)
                .where(B.environment_id == env, B.id == batch_id)
                .values(
                    state="failed",
                    callback_status="failed",
                    callback_next_at=None,
                    updated_at=stamp,
                    completed_at=stamp,
                )
            )
            state = "failed"
    log.warning(
        "marketo_callback_failed",
        env=env,
        batch=batch_id,
        attempts=attempts,
        error=outcome.error,
        final=state == "failed",
    )
    return state


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _lock_key(env: str, batch_id: str) -> str:
    return f"hub:marketo:callback:{env}:{batch_id}"


async def deliver(hub: Hub, env: str, batch_id: str) -> str:
    """Send the batch's callback if it is due; the batch's state afterwards.

    Runs of one batch (its job, a deferred retry, the sweeper's) may overlap: one at a time
    holds the batch's callback lock in Redis, for at most as long as its attempts can take (a
    killed worker's lock expires), and the others leave the callback to it.
    """
    settings: MarketoSettings = hub.plugin_settings["marketo"]
    lease = settings.callback_tries_per_run * (settings.callback_timeout_seconds + IN_JOB_MAX_WAIT) + 30
    owner = secrets.token_hex(8)
    if not await hub.redis.set(_lock_key(env, batch_id), owner, nx=True, px=int(lease * 1000)):
        return "calling_back"
    try:
        return await _deliver(hub, env, batch_id)
    finally:
        await hub.redis.eval(_RELEASE, 1, _lock_key(env, batch_id), owner)  # type: ignore[misc]


async def _deliver(hub: Hub, env: str, batch_id: str) -> str:
    settings: MarketoSettings = hub.plugin_settings["marketo"]
    async with hub.db.connect() as conn:
        row = (
            (await conn.execute(select(batch_table).where(B.environment_id == env, B.id == batch_id)))
            .mappings()
            .first()
        )
    if row is None or row["state"] != "calling_back":
        return str(row["state"]) if row is not None else "gone"
    if row["callback_next_at"] is not None and row["callback_next_at"] > now() + timedelta(seconds=1):
        return "calling_back"  # an early duplicate run: the deferred one will send
    seal, context = sealer(hub), f"{env}:{batch_id}"
    try:
        api_key, token = seal.unseal(row["api_callback_key"], context), seal.unseal(row["token"], context)
    except ValueError as exc:  # HUB_SECRET_KEY changed since the batch was stored
        outcome = Outcome(None, str(exc), retryable=False)
        return await _give_up_or_defer(
            hub, env, batch_id, outcome, await _record(hub, env, batch_id, outcome)
        )
    body = msgspec.json.encode(row["callback_body"])
    attempts = row["callback_attempts"]
    last = Outcome(None, "not attempted", retryable=True)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(
            max(1, min(settings.callback_tries_per_run, settings.callback_max_attempts - attempts))
        ),
        wait=wait_exponential_jitter(
            multiplier=settings.callback_backoff_base_seconds,
            max=min(IN_JOB_MAX_WAIT, settings.callback_max_backoff_seconds),
            jitter=settings.callback_backoff_base_seconds,
        ),
        retry=retry_if_exception_type(_TryAgain),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                last = await post(hub, row["callback_url"], body, api_key, token)
                attempts = await _record(hub, env, batch_id, last)
                if last.retryable:
                    raise _TryAgain(last)
    except _TryAgain:
        pass
    if last.ok:
        log.info("marketo_callback_sent", env=env, batch=batch_id, attempts=attempts, leads=row["lead_count"])
        return "completed"
    return await _give_up_or_defer(hub, env, batch_id, last, attempts)
