"""Batches after they are planned: stored durably, started by workers, their results recorded.

:func:`accept` writes the batch and its job in one transaction (the outbox hands the job to the
queue after commit), so a 201 means the batch is stored; a batch seen before writes nothing.

``marketo_run_batch`` (a job) starts the leads a chunk per transaction through the core's batch
entry point :func:`hub.services.triggers.start_single_user_flows`: the chunk's invocations and
the batch's progress (``started_through`` and the per-lead results) commit together, and each
lead's ``flowInvocationId`` derives from the batch and the lead id. A worker killed mid-batch is
followed by another run of the job that resumes after the last committed chunk and starts no lead
twice. Once every lead is done the callback body is built and stored (every attempt sends the
same), and :mod:`callback` delivers it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from hub import queue
from hub.core.clock import now
from hub.db import insert_ignore, lock_for_write
from hub.logging import get_logger
from hub.sealing import Sealer
from hub.services import triggers
from hub.services.cards import decode_cursor, encode_cursor, iso
from hub.services.outbox import transaction
from hub_plugins.marketo import config as marketo_config
from hub_plugins.marketo.intake import Plan, invocation_id
from hub_plugins.marketo.tables import batch as batch_table

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)
B = batch_table.c
SEALER_PURPOSE = b"hub marketo batch v1"
RUN_JOB = "marketo_run_batch"
FLOW_UNAVAILABLE = "FLOW_UNAVAILABLE"
BATCH_FLOW_UNAVAILABLE = "HUB_BATCH_FLOW_UNAVAILABLE"  # batch-level; never a lead's code
STALL_SECONDS = 60


class BatchNotFound(LookupError):
    pass


def sealer(hub: Hub) -> Sealer:
    return Sealer(hub.secret_key, purpose=SEALER_PURPOSE)


def run_job_id(env: str, batch_id: str) -> str:
    return f"marketo:{env}:{batch_id}"


async def accept(hub: Hub, env: str, plan: Plan) -> bool:
    """Store the batch and enqueue its job (after commit); False when it was stored before."""
    stamp = now()
    seal = sealer(hub)
    context = f"{env}:{plan.batch_id}"
    row = {
        "environment_id": env,
        "id": plan.batch_id,
        "marketo_batch_id": plan.marketo_batch_id,
        "campaign_id": plan.campaign_id,
        "munchkin_id": plan.munchkin_id,
        "callback_url": plan.callback_url,
        "token": seal.seal(plan.token, context),
        "api_callback_key": seal.seal(plan.api_callback_key, context),
        "leads": plan.leads,
        "lead_count": len(plan.leads),
        "results": [],
        "started_through": 0,
        "state": "queued",
        "error": None,
        "callback_body": None,
        "callback_status": "pending",
        "callback_attempts": 0,
        "callback_last_code": None,
        "callback_last_error": None,
        "callback_next_at": None,
        "created_at": stamp,
        "updated_at": stamp,
        "completed_at": None,
    }
    async with transaction(hub) as tx:
        created = await insert_ignore(tx.conn, batch_table, row, ["environment_id", "id"]) == 1
        if created:
            await tx.enqueue(RUN_JOB, [env, plan.batch_id], job_id=run_job_id(env, plan.batch_id))
    return created


# --- the job ---------------------------------------------------------------------------------


def _failure(lead: Mapping[str, Any], code: str, reason: str) -> dict[str, Any]:
    return {
        "id": lead["id"],
        "flow": lead["flow"],
        "success": False,
        "errorCode": code,
        "reason": reason[:1000],
    }


def _rejection(issue: Any) -> tuple[str, str]:
    code = "INVALID_USER_ID" if issue.field == "userId" else "INVALID_VARIABLE"
    return code, f"{issue.field}: {issue.reason}"


async def _start_leads(
    hub: Hub, tx: Any, env: str, batch_id: str, lo: int, chunk: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Start a chunk of leads in ``tx``; one result per lead, in order."""
    results: dict[int, dict[str, Any]] = {}
    by_flow: dict[str, list[int]] = {}
    for index, lead in enumerate(chunk):
        if lead["error"]:
            results[index] = _failure(lead, *lead["error"])
        else:
            by_flow.setdefault(lead["flow"], []).append(index)
    stamp = iso(now().replace(microsecond=0))
    for flow_id, indexes in by_flow.items():
        starts = [
            {
                "flowInvocationId": invocation_id(batch_id, chunk[i]["id"]),
                "userId": chunk[i]["user"],
                "variables": chunk[i]["variables"],
                "metadata": chunk[i]["metadata"],
            }
            for i in indexes
        ]
        try:
            outcome = await triggers.start_single_user_flows(
                hub, tx, env, flow_id, starts, source="marketo", batch_id=f"mkto:{batch_id}:{lo}:{flow_id}"
            )
        except triggers.TriggerError as exc:
            for i in indexes:
                results[i] = _failure(chunk[i], FLOW_UNAVAILABLE, f"flow {flow_id!r} cannot start: {exc}")
            continue
        rejected = dict(outcome["rejected"])
        for position, i in enumerate(indexes):
            if position in rejected:
                results[i] = _failure(chunk[i], *_rejection(rejected[position]))
            else:
                results[i] = {
                    "id": chunk[i]["id"],
                    "flow": flow_id,
                    "success": True,
                    "invocationId": starts[position]["flowInvocationId"],
                    "userId": chunk[i]["user"],
                    "startedAt": stamp,
                }
    return [results[i] for i in range(len(chunk))]


def callback_body(
    munchkin_id: str, results: list[dict[str, Any]], write_back: tuple[str, ...]
) -> tuple[dict[str, Any], str | None]:
    """The callback Marketo receives, and the batch-level error when no lead could run because
    their flow could not start (unpublished, archived or deleted since the batch came)."""
    data = []
    for result in results:
        lead: dict[str, Any] = {"id": result["id"]}
        if result["success"]:
            values = {
                "hubInvocationId": result["invocationId"],
                "hubUserId": result["userId"],
                "hubFlowConfigId": result["flow"],
                "hubLastStatus": "started",
                "hubStartedAt": result["startedAt"],
            }
            activity: dict[str, Any] = {
                "success": True,
                "hubInvocationId": result["invocationId"],
                "hubUserId": result["userId"],
            }
        else:
            values = {"hubLastStatus": result["errorCode"]}
            activity = {"success": False, "errorCode": result["errorCode"], "reason": result["reason"]}
        lead.update({name: values[name] for name in write_back if name in values})
        data.append({"leadData": lead, "activityData": activity})
    body: dict[str, Any] = {"munchkinId": munchkin_id, "objectData": data}
    error = None
    if results and all(r.get("errorCode") == FLOW_UNAVAILABLE for r in results):
        error = results[0]["reason"]
        body.update(errorCode=BATCH_FLOW_UNAVAILABLE, errorMessage=error)
    return body, error


async def start_chunk(hub: Hub, env: str, batch_id: str, *, hand_over: bool = False) -> str | None:
    """Start the batch's next chunk of leads (one transaction); the batch's state afterwards, or
    None when there is no such batch. ``hand_over``: when leads remain, a fresh job continues
    (enqueued in the same transaction), and the state returned is ``handed_over``."""
    chunk_size = max(1, hub.plugin_settings["marketo"].chunk_leads)
    async with transaction(hub) as tx:
        await lock_for_write(tx.conn)
        query = select(batch_table).where(B.environment_id == env, B.id == batch_id)
        if tx.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await tx.conn.execute(query)).mappings().first()
        if row is None:
            return None
        if row["state"] not in ("queued", "starting"):
            return str(row["state"])
        lo = row["started_through"]
        results = list(row["results"]) + await _start_leads(
            hub, tx, env, batch_id, lo, list(row["leads"][lo : lo + chunk_size])
        )
        stamp = now()
        values: dict[str, Any] = {
            "results": results,
            "started_through": len(results),
            "updated_at": stamp,
            "state": "starting",
        }
        if len(results) >= row["lead_count"]:
            cfg = await marketo_config.load(hub, env)
            body, error = callback_body(row["munchkin_id"], results, cfg.write_back if cfg else ())
            values.update(state="calling_back", callback_body=body, error=error)
        await tx.conn.execute(
            update(batch_table).where(B.environment_id == env, B.id == batch_id).values(values)
        )
        if hand_over and values["state"] == "starting":
            await tx.enqueue(
                RUN_JOB, [env, batch_id], job_id=f"{run_job_id(env, batch_id)}:from:{len(results)}"
            )
            return "handed_over"
        return str(values["state"])


async def marketo_run_batch(ctx: dict[str, Any], env: str, batch_id: str) -> str | None:
    """Job: start the batch's leads chunk by chunk, then deliver its callback. After
    ``HUB_MARKETO_JOB_SECONDS`` a fresh job takes over, so no job runs long."""
    from hub_plugins.marketo.callback import deliver

    hub: Hub = ctx["hub"]
    # Well inside the job timeout: a job arq times out is not retried.
    deadline = time.monotonic() + min(
        hub.plugin_settings["marketo"].job_seconds, hub.settings.job_timeout_seconds / 3
    )
    state = await start_chunk(hub, env, batch_id)
    while state == "starting":
        state = await start_chunk(hub, env, batch_id, hand_over=time.monotonic() > deadline)
    if state == "calling_back":
        state = await deliver(hub, env, batch_id)
    return state


async def marketo_sweep(ctx: dict[str, Any]) -> int:
    """Cron job, the safety net: a batch without progress for a minute lost its job (one that
    failed every try, a flushed queue), and a callback retry a minute overdue lost its deferred
    job: enqueue a new run (runs of one batch take turns on its row, so this is safe)."""
    hub: Hub = ctx["hub"]
    stamp = now()
    cutoff = stamp - timedelta(seconds=STALL_SECONDS)
    async with hub.db.connect() as conn:
        stalled = (
            await conn.execute(
                select(B.environment_id, B.id, B.started_through, B.callback_attempts)
                .where(
                    or_(
                        and_(B.state.in_(("queued", "starting")), B.updated_at < cutoff),
                        and_(
                            B.state == "calling_back",
                            B.updated_at < cutoff,
                            or_(B.callback_next_at.is_(None), B.callback_next_at < cutoff),
                        ),
                    )
                )
                .limit(100)
            )
        ).all()
    bucket = int(stamp.timestamp()) // 300
    for env, batch_id, through, attempts in stalled:
        await queue.enqueue(
            hub.redis,
            RUN_JOB,
            [env, batch_id],
            f"{run_job_id(env, batch_id)}:sweep:{through}:{attempts}:{bucket}",
        )
    return len(stalled)


# --- reading ---------------------------------------------------------------------------------

# A page of batches leaves out the big columns (the planned leads, the callback body).
_LISTED = [c for c in batch_table.c if c.name not in ("leads", "callback_body", "token", "api_callback_key")]


def batch_json(row: Mapping[str, Any], *, leads: bool = False) -> dict[str, Any]:
    """A batch as the API shows it (never Marketo's token or callback key)."""
    results = list(row["results"])
    out: dict[str, Any] = {
        "batchId": row["id"],
        "marketoBatchId": row["marketo_batch_id"],
        "campaignId": row["campaign_id"],
        "munchkinId": row["munchkin_id"],
        "state": row["state"],
        "leads": row["lead_count"],
        "leadsDone": row["started_through"],
        "leadsStarted": sum(1 for r in results if r["success"]),
        "leadsFailed": sum(1 for r in results if not r["success"]),
        "error": row["error"],
        "callback": {
            "status": row["callback_status"],
            "attempts": row["callback_attempts"],
            "lastStatusCode": row["callback_last_code"],
            "lastError": row["callback_last_error"],
            "nextAttemptAt": iso(row["callback_next_at"]),
        },
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "completedAt": iso(row["completed_at"]),
    }
    if leads:
        out["results"] = results
    return out


async def get_batch(hub: Hub, env: str, batch_id: str) -> dict[str, Any]:
    async with hub.db.connect() as conn:
        row = (
            (await conn.execute(select(batch_table).where(B.environment_id == env, B.id == batch_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise BatchNotFound(batch_id)
    return batch_json(row, leads=True)


async def list_batches(hub: Hub, env: str, *, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Batches newest first, by keyset pages (``ValueError`` for a cursor this API did not give)."""
    query = select(*_LISTED).where(B.environment_id == env)
    if cursor:
        stamp, last_id = decode_cursor(cursor)
        query = query.where(or_(B.created_at < stamp, and_(B.created_at == stamp, B.id < last_id)))
    async with hub.db.connect() as conn:
        rows = (
            (await conn.execute(query.order_by(B.created_at.desc(), B.id.desc()).limit(limit + 1)))
            .mappings()
            .all()
        )
    page = rows[:limit]
    return {
        "batches": [batch_json(r) for r in page],
        "nextCursor": encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None,
    }
