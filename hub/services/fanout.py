"""Fan-out: turn one invocation into one flow instance per targeted customer, in chunks.

``run_invocation`` plans: it reads the targeted customers' ids in one pass, in primary-key
order, and writes one ``fanout_chunk`` job per page of them (through the outbox, in one
transaction). A target that fits in one page is run there and then, so a single-customer
trigger costs one job, and that job also runs the other single-customer starts still waiting
for theirs (they then find nothing to do). Chunks are independent and idempotent (instance ids
derive from invocation + user), so any number of workers share a large fan-out, and a chunk
that runs twice creates nothing new.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, false, func, literal_column, select, table, text, true, update

from hub import queue
from hub.core.clock import now
from hub.db import bulk_insert, lock_for_write, tables
from hub.logging import get_logger
from hub.services import engine
from hub.services.outbox import PendingJob, transaction

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)
C = tables.customer.c
T = tables.customer_tag.c
V = tables.invocation.c
CHUNK = 500

_OPS = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def _field_expr(name: str, type_: str, value: Any) -> Any:
    column = C.fields[name]
    if type_ == "number":
        return column.as_float()
    if type_ == "boolean":
        return column.as_boolean()
    return column.as_string()


def target_condition(target: dict[str, Any], field_types: dict[str, str], test: bool) -> Any:
    """SQL for the customers a (validated, normalised) target selects."""
    if "usersById" in target:
        cond = C.user_id.in_(target["usersById"])
    elif "tags" in target:
        tags = target["tags"]
        if target.get("match", "any") == "all":
            cond = and_(*[exists().where(T.customer_id == C.id, T.tag == tag) for tag in tags])
        else:
            cond = exists().where(T.customer_id == C.id, T.tag.in_(tags))
    elif "filter" in target:
        parts = []
        for rule in target["filter"]:
            name, op, value = rule["field"], rule["op"], rule.get("value")
            type_ = field_types.get(name, "text")
            column = _field_expr(name, type_, value)
            if op == "exists":
                parts.append(C.fields[name].isnot(None) if value else C.fields[name].is_(None))
            elif op == "in":
                parts.append(column.in_(value))
            else:
                parts.append(getattr(column, _OPS[op])(value))
        cond = and_(true(), *parts)
    elif target.get("allTestUsers"):
        cond = C.is_test_user.is_(True)
    else:
        cond = false()
    if test:
        cond = and_(cond, C.is_test_user.is_(True))
    return cond


async def _field_types(conn: Any, env: str) -> dict[str, str]:
    f = tables.field_definition.c
    return dict((await conn.execute(select(f.name, f.type).where(f.environment_id == env))).all())


async def _process(hub: Hub, tx: Any, invocation: dict[str, Any], condition: Any,
                   lo: int, hi: int) -> int:
    """Create and run the instances of customers ``lo < id <= hi``; returns how many were new."""
    env = invocation["environment_id"]
    customers = (await tx.conn.execute(
        select(C.id, C.user_id, C.fields, C.tags).where(
            C.environment_id == env, C.id > lo, C.id <= hi, condition).order_by(C.id))).all()
    if not customers:
        return 0
    fi = tables.flow_instance.c
    started = {u for (u,) in await tx.conn.execute(select(fi.user_id).where(
        fi.environment_id == env, fi.invocation_id == invocation["id"],
        fi.user_id.in_([c.user_id for c in customers])))}
    fresh = [c for c in customers if c.user_id not in started]
    if not fresh:
        return 0
    defn = await engine.definition(hub, tx.conn, env, invocation["flow_id"], invocation["flow_version"])
    run = engine.Run(hub, tx, env)
    run.invocations[invocation["id"]] = invocation
    for customer in fresh:
        inst = engine.new_instance(env, invocation, customer.user_id, run.stamp)
        await run.start(inst, defn, engine.customer_context(customer))
    await run.flush()
    return len(fresh)


async def _chunk_done(tx: Any, env: str, invocation_id: str, hi: int, new: int) -> None:
    """Mark a chunk done (once) and count it; the last one completes the invocation."""
    stamp = now()
    ch = tables.invocation_chunk.c
    first_time = await tx.conn.execute(update(tables.invocation_chunk).where(
        ch.environment_id == env, ch.invocation_id == invocation_id, ch.hi == hi,
        ch.done_at.is_(None)).values(done_at=stamp))
    if not first_time.rowcount:
        return
    await tx.conn.execute(update(tables.invocation).where(V.environment_id == env, V.id == invocation_id)
                          .values(chunks_done=V.chunks_done + 1, started=V.started + new,
                                  updated_at=stamp))
    await tx.conn.execute(update(tables.invocation).where(
        V.environment_id == env, V.id == invocation_id, V.status == "running",
        V.chunks_total.isnot(None), V.chunks_done >= V.chunks_total,
    ).values(status="completed", completed_at=stamp))


async def run_invocation(ctx: dict[str, Any], env: str, invocation_id: str) -> int:
    """Job: plan (or, for one page of customers, run) an invocation's fan-out."""
    hub: Hub = ctx["hub"]
    async with transaction(hub) as tx:
        await lock_for_write(tx.conn)
        invocation = await engine.load_invocation(tx.conn, env, invocation_id, lock=True)
        if invocation is None or invocation["status"] != "pending":
            return 0
        if _one_customer(invocation):
            return await _run_with_waiting(hub, tx, env, invocation_id)
        condition = target_condition(invocation["target"], await _field_types(tx.conn, env),
                                     invocation["test"])
        base = select(C.id).where(C.environment_id == env, condition).order_by(C.id)
        bounds = await _pages(tx.conn, base)
        stamp = now()
        if len(bounds) <= 1:  # one page: run it now, no chunk job
            hi, targeted = bounds[0] if bounds else (None, 0)
            new = await _process(hub, tx, invocation, condition, 0, hi) if hi is not None else 0
            await tx.conn.execute(update(tables.invocation).where(
                V.environment_id == env, V.id == invocation_id).values(
                status="completed", targeted=targeted, started=new, chunks_total=1, chunks_done=1,
                fanout_cursor=hi, updated_at=stamp, completed_at=stamp))
            return new
        await _fresh_statistics(tx.conn, sum(count for _hi, count in bounds))
        los = [0] + [hi for hi, _count in bounds[:-1]]
        await bulk_insert(tx.conn, tables.invocation_chunk, [
            {"environment_id": env, "invocation_id": invocation_id, "lo": lo, "hi": hi,
             "created_at": stamp} for lo, (hi, _count) in zip(los, bounds, strict=True)])
        await tx.enqueue_many([
            PendingJob("fanout_chunk", [env, invocation_id, lo, hi], f"chunk:{env}:{invocation_id}:{hi}")
            for lo, (hi, _count) in zip(los, bounds, strict=True)])
        cursor, chunks, targeted = bounds[-1][0], len(bounds), sum(count for _hi, count in bounds)
        await tx.conn.execute(update(tables.invocation).where(
            V.environment_id == env, V.id == invocation_id).values(
            status="running", targeted=targeted, chunks_total=chunks, fanout_cursor=cursor,
            updated_at=stamp))
        log.info("fanout_planned", invocation=invocation_id, customers=targeted, chunks=chunks)
        return 0


async def _pages(conn: Any, ids_query: Any) -> list[tuple[int, int]]:
    """The pages of a fan-out: ``(last id, customers)`` per :data:`CHUNK` ids, in id order.

    One pass over the target (streamed, so a million customers are never in memory at once):
    paging with ``LIMIT`` instead costs a query per page, each one re-scanning what is left."""
    bounds: list[tuple[int, int]] = []
    count, last = 0, None
    result = await conn.stream_scalars(ids_query.execution_options(yield_per=10 * CHUNK))
    async for customer_id in result:
        count, last = count + 1, customer_id
        if count == CHUNK:
            bounds.append((last, count))
            count = 0
    if count:
        bounds.append((last, count))
    return bounds


async def _fresh_statistics(conn: Any, targeted: int) -> None:
    """On PostgreSQL, ``ANALYZE`` the customer tables when their statistics say there are fewer
    than half as many customers as this fan-out targets (a large import not analysed yet:
    autovacuum runs later, or is off). With such statistics the planner reads each chunk's
    customers through an index on the environment, every customer of it for every chunk, and
    a 100,000-customer fan-out costs PostgreSQL several times its inserts."""
    if conn.dialect.name != "postgresql":
        return
    customer, tag = tables.customer.name, tables.customer_tag.name
    estimate = (await conn.execute(select(literal_column("reltuples")).select_from(
        table("pg_class")).where(literal_column("oid") == func.to_regclass(customer)))).scalar()
    if estimate is None or estimate < targeted / 2:
        await conn.execute(text(f"ANALYZE {customer}, {tag}"))
        log.info("fanout_analyzed", tables=[customer, tag], estimate=estimate, targeted=targeted)


STEAL = 200
"""Most waiting one-customer invocations a ``run_invocation`` job runs along with its own."""


def _one_customer(invocation: dict[str, Any]) -> bool:
    target = invocation["target"]
    return not invocation["test"] and set(target) == {"usersById"} and len(target["usersById"]) == 1


def waiting_query(dialect: str, env: str, invocation_id: str) -> Any:
    """The environment's oldest invocations still waiting for their job, but ``invocation_id``
    (served by the partial index ``ix_hub_invocation_pending``, whatever the table holds)."""
    query = (select(V.id).where(V.environment_id == env, V.status == "pending", V.test.is_(False),
                                V.id != invocation_id)
             .order_by(V.created_at).limit(STEAL))
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


async def _run_with_waiting(hub: Hub, tx: Any, env: str, invocation_id: str) -> int:
    """Run a one-customer invocation together with others of the environment still waiting for
    their jobs (up to :data:`STEAL`), in this one transaction: under load, single-customer
    starts cost a share of one engine run instead of a job each. Their own jobs, when they
    come, find them done. On PostgreSQL rows another worker holds are skipped, not waited for."""
    from hub.services.triggers import _run_single_user

    waiting = [i for (i,) in await tx.conn.execute(waiting_query(tx.conn.dialect.name, env, invocation_id))]
    started, _others = await _run_single_user(hub, tx, env, [invocation_id, *waiting])
    return started


async def fanout_chunk(ctx: dict[str, Any], env: str, invocation_id: str, lo: int, hi: int) -> int:
    """Job: create and run the instances of one page of an invocation's customers."""
    hub: Hub = ctx["hub"]
    async with transaction(hub) as tx:
        invocation = await engine.load_invocation(tx.conn, env, invocation_id)
        if invocation is None:
            return 0
        new = 0
        if invocation["status"] == "running":  # a cancelled invocation's chunks only count
            condition = target_condition(invocation["target"], await _field_types(tx.conn, env),
                                         invocation["test"])
            new = await _process(hub, tx, invocation, condition, lo, hi)
        await _chunk_done(tx, env, invocation_id, hi, new)
        return new


STALL_SECONDS = 60


async def sweep_invocations(ctx: dict[str, Any]) -> int:
    """Cron job: re-enqueue fan-out work whose job was lost (a Redis without persistence that
    restarted, a flushed queue). Planning and chunks are idempotent, so a duplicate is harmless."""
    hub: Hub = ctx["hub"]
    cutoff = now() - timedelta(seconds=STALL_SECONDS)
    bucket = int(now().timestamp()) // 300
    ch = tables.invocation_chunk.c
    async with hub.db.connect() as conn:
        pending = (await conn.execute(select(V.environment_id, V.id).where(
            V.status == "pending", V.updated_at < cutoff).limit(1000))).all()
        chunks = (await conn.execute(select(ch.environment_id, ch.invocation_id, ch.lo, ch.hi).join(
            tables.invocation, and_(V.environment_id == ch.environment_id, V.id == ch.invocation_id)
        ).where(V.status == "running", ch.done_at.is_(None), ch.created_at < cutoff).limit(1000))).all()
    swept = 0
    for env, invocation_id in pending:
        if not await _job_alive(hub, f"invocation:{env}:{invocation_id}"):
            await queue.enqueue(hub.redis, "run_invocation", [env, invocation_id],
                                f"sweep:invocation:{env}:{invocation_id}:{bucket}")
            swept += 1
    for env, invocation_id, lo, hi in chunks:
        if not await _job_alive(hub, f"chunk:{env}:{invocation_id}:{hi}"):
            await queue.enqueue(hub.redis, "fanout_chunk", [env, invocation_id, lo, hi],
                                f"sweep:chunk:{env}:{invocation_id}:{hi}:{bucket}")
            swept += 1
    return swept


async def _job_alive(hub: Hub, job_id: str) -> bool:
    """Whether the original job is still queued or running (a big fan-out's later chunks wait
    in the queue for minutes: they are not lost, and a second copy would only collide)."""
    return bool(await hub.redis.exists(f"arq:job:{job_id}", f"arq:in-progress:{job_id}"))


def sweep_schedule(settings: Any) -> dict[str, Any]:
    return {"second": {15, 45}}
