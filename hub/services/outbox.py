"""The transactional outbox: a change and the jobs it implies commit together, or not at all.

Use :func:`transaction`::

    async with transaction(hub) as tx:
        await tx.conn.execute(...)                   # the change
        await tx.enqueue("announce", [env, ids], job_id=f"announce:{batch_id}")

The outbox row is written in the same transaction as the change. After the commit the job is
handed to the queue; the row stays until the relay (a cron job in every worker, every
``HUB_OUTBOX_RELAY_SECONDS``) sees that Redis knows the job (queued, running or done) and deletes
it in a batch, so the request path pays no second transaction. If the process died between the
commit and the enqueue, the relay finds the row unknown to Redis once it is older than
``HUB_OUTBOX_GRACE_SECONDS`` and enqueues it. Job ids come from domain ids, so a job enqueued
twice runs once while its result is kept, and jobs are written to be safe to run twice anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import queue
from hub.core.clock import now
from hub.db import bulk_insert, tables
from hub.hookspecs import hookimpl
from hub.logging import get_logger

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)


@dataclass(frozen=True)
class PendingJob:
    job_name: str
    args: list[Any]
    job_id: str
    defer_until: datetime | None = None


@dataclass
class Transaction:
    conn: AsyncConnection
    pending: list[PendingJob] = field(default_factory=list)

    async def enqueue(self, job_name: str, args: list[Any], *, job_id: str,
                      defer_until: datetime | None = None) -> None:
        """Record a job to run after this transaction commits."""
        job = PendingJob(job_name, args, job_id, defer_until)
        await add(self.conn, job)
        self.pending.append(job)

    async def enqueue_many(self, jobs: list[PendingJob]) -> None:
        """Record several jobs to run after this transaction commits, in one statement."""
        if jobs:
            stamp = now()
            await bulk_insert(self.conn, tables.outbox, [
                {"job_id": j.job_id, "job_name": j.job_name, "args": j.args,
                 "defer_until": j.defer_until, "created_at": stamp} for j in jobs], ["job_id"])
            self.pending.extend(jobs)


async def add(conn: AsyncConnection, job: PendingJob) -> None:
    """Write an outbox row in the caller's transaction (a repeated job id is ignored)."""
    await bulk_insert(conn, tables.outbox, [{
        "job_id": job.job_id, "job_name": job.job_name, "args": job.args,
        "defer_until": job.defer_until, "created_at": now(),
    }], ["job_id"])


@asynccontextmanager
async def transaction(hub: Hub) -> AsyncIterator[Transaction]:
    """One database transaction whose outbox jobs are enqueued after it commits."""
    async with hub.db.begin() as conn:
        tx = Transaction(conn)
        yield tx
    if tx.pending:
        await flush(hub, tx.pending)


async def flush(hub: Hub, jobs: list[PendingJob]) -> None:
    """Hand committed jobs to the queue (their outbox rows are cleared later by the relay).

    Inside a worker's job, jobs registered with ``inline=True`` run here instead, one hop sooner,
    and are recorded as done (enqueued after all, to be retried, if they raise). A failure here
    is logged, not raised: the change is committed and the relay will enqueue.
    """
    inline = queue.IN_WORKER_JOB.get()
    try:
        for job in jobs:
            if inline and job.defer_until is None and _inline(hub, job) and await _run_inline(hub, job):
                continue
            await queue.enqueue(hub.redis, job.job_name, job.args, job.job_id, job.defer_until)
    except Exception as exc:  # the relay is the safety net; the caller's change stands
        log.warning("outbox_flush_failed", error=repr(exc), jobs=len(jobs))


def _inline(hub: Hub, job: PendingJob) -> bool:
    registered = hub.registry.jobs.get(job.job_name)
    return registered is not None and registered.inline


async def _run_inline(hub: Hub, job: PendingJob) -> bool:
    """Run a job registered ``inline=True`` here and now (a worker, after the commit that created
    it); ``False`` when it raised, so the caller enqueues it to be retried as usual."""
    from arq.utils import timestamp_ms

    started = timestamp_ms()
    try:
        result = await hub.registry.jobs[job.job_name].function(
            {"hub": hub, "job_id": job.job_id, "job_try": 1, "enqueue_time": now()}, *job.args)
    except Exception as exc:
        log.warning("inline_job_failed", job=job.job_name, job_id=job.job_id, error=repr(exc))
        return False
    await queue.mark_done(hub.redis, job.job_name, job.args, job.job_id, started, result)
    hub.metrics.jobs.labels(job.job_name, "inline").inc()
    return True


async def relay(hub: Hub, older_than: timedelta | None = None, batch: int = 500) -> int:
    """Clear outbox rows whose job Redis knows; enqueue those it does not know once they are older
    than the grace period. Returns how many jobs were handed over (missed enqueues)."""
    grace = older_than if older_than is not None else timedelta(
        seconds=hub.settings.outbox_grace_seconds)
    cutoff = now() - grace
    o = tables.outbox.c
    total, after = 0, 0
    while True:
        async with hub.db.connect() as conn:
            rows = (await conn.execute(
                select(o.id, o.job_id, o.job_name, o.args, o.defer_until, o.created_at)
                .where(o.id > after).order_by(o.id).limit(batch)
            )).all()
        if not rows:
            return total
        after = rows[-1].id
        known = await queue.known_jobs(hub.redis, [row.job_id for row in rows])
        missed = [row for row in rows if row.job_id not in known and row.created_at <= cutoff]
        for row in missed:
            await queue.enqueue(hub.redis, row.job_name, list(row.args), row.job_id,
                                row.defer_until)
        done = [row.id for row in rows if row.job_id in known] + [row.id for row in missed]
        if done:
            async with hub.db.begin() as conn:
                await conn.execute(delete(tables.outbox).where(o.id.in_(done)))
        if missed:
            total += len(missed)
            log.info("outbox_relayed", count=len(missed))


async def outbox_relay(ctx: dict[str, Any]) -> int:
    """Cron job: hand missed outbox rows to the queue."""
    return await relay(ctx["hub"])


def _relay_schedule(settings: Any) -> dict[str, Any]:
    step = max(1, int(settings.outbox_relay_seconds))
    return {"second": set(range(0, 60, step)) if step < 60 else {0}, "run_at_startup": True}


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(outbox_relay, cron=_relay_schedule, max_tries=1)
