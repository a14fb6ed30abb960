"""Uploads after they are received: starting their rows in workers, progress, the error report.

``list_upload_run`` (a job) starts an upload's rows a chunk per transaction through the core's
batch entry point :func:`hub.services.triggers.start_single_user_flows`. Each row's invocation id
is derived from the upload id and row number, and the upload's progress (``started_through``,
the counts) commits in the same transaction as the chunk's invocations: a job killed mid-upload
is retried by arq, resumes after the last committed chunk, and can never start a row twice.
A job hands over to a fresh one (through the outbox) after ``HUB_LIST_UPLOAD_JOB_SECONDS``, so
no job runs long.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select, update

from hub import queue
from hub.core.clock import now
from hub.db import bulk_insert, lock_for_write
from hub.db import tables as core_tables
from hub.logging import get_logger
from hub.services import triggers
from hub.services.cards import decode_cursor, encode_cursor, iso
from hub.services.outbox import transaction
from hub_plugins.list_upload import tables

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)
U = tables.upload.c
R = tables.row.c
E = tables.error.c
UPLOAD_ID = re.compile(r"^[0-9a-f-]{36}$")
STALL_SECONDS = 60
STATES = ("receiving", "queued", "running", "completed", "failed")


class UploadNotFound(LookupError):
    pass


def invocation_id_for(upload_id: str, row_number: int) -> str:
    """The invocation a row starts: the same on every run, so a row starts once."""
    return f"list:{upload_id}:{row_number}"


def upload_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "uploadId": row["id"],
        "flowConfigId": row["flow_id"],
        "filename": row["filename"],
        "state": row["state"],
        "contentHash": row["content_hash"],
        "mapping": row["mapping"],
        "rowsRead": row["rows_read"],
        "rowsValid": row["rows_valid"],
        "rowsStarted": row["rows_started"],
        "rowsRejected": row["rows_rejected"],
        "error": row["error"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "queuedAt": iso(row["queued_at"]),
        "startedAt": iso(row["started_at"]),
        "completedAt": iso(row["completed_at"]),
        "errorsUrl": f"/v1/{row['environment_id']}/uploads/{row['id']}/errors.csv",
    }


async def get_upload(hub: Hub, env: str, upload_id: str) -> dict[str, Any]:
    if not UPLOAD_ID.match(upload_id):
        raise UploadNotFound(upload_id)  # no stored id looks like this
    async with hub.db.connect() as conn:
        row = (
            (await conn.execute(select(tables.upload).where(U.environment_id == env, U.id == upload_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise UploadNotFound(upload_id)
    return upload_json(row)


async def list_uploads(
    hub: Hub, env: str, *, flow_id: str | None = None, cursor: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """Uploads newest first, by keyset pages (``ValueError`` for a cursor this API did not give)."""
    query = select(tables.upload).where(U.environment_id == env)
    if flow_id is not None:
        query = query.where(U.flow_id == flow_id)
    if cursor:
        stamp, last_id = decode_cursor(cursor)
        query = query.where(or_(U.created_at < stamp, and_(U.created_at == stamp, U.id < last_id)))
    async with hub.db.connect() as conn:
        rows = (
            (await conn.execute(query.order_by(U.created_at.desc(), U.id.desc()).limit(limit + 1)))
            .mappings()
            .all()
        )
    page = rows[:limit]
    return {
        "uploads": [upload_json(r) for r in page],
        "nextCursor": encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None,
    }


async def error_report(hub: Hub, env: str, upload_id: str, batch: int = 1000) -> AsyncIterator[str]:
    """``errors.csv`` as it is read, a page of rejected rows at a time: ``row,reason``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "reason"])
    after = 0
    while True:
        async with hub.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(E.row_number, E.reason)
                    .where(E.environment_id == env, E.upload_id == upload_id, E.row_number > after)
                    .order_by(E.row_number)
                    .limit(batch)
                )
            ).all()
        writer.writerows(rows)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < batch:
            return
        after = rows[-1].row_number


# --- the job ---------------------------------------------------------------------------------


async def list_upload_run(ctx: dict[str, Any], env: str, upload_id: str) -> int:
    """Job: start the upload's rows, a chunk per transaction, until done or its time is up."""
    hub: Hub = ctx["hub"]
    settings = hub.plugin_settings["list_upload"]
    # Well inside the job timeout: a job arq times out is not retried.
    deadline = time.monotonic() + min(settings.job_seconds, hub.settings.job_timeout_seconds / 3)
    started = 0
    while True:
        async with transaction(hub) as tx:
            await lock_for_write(tx.conn)
            query = select(tables.upload).where(U.environment_id == env, U.id == upload_id)
            if tx.conn.dialect.name == "postgresql":
                query = query.with_for_update()
            upload = (await tx.conn.execute(query)).mappings().first()
            if upload is None or upload["state"] not in ("queued", "running"):
                return started
            rows = (
                await tx.conn.execute(
                    select(R.row_number, R.user_id, R.variables, R.metadata)
                    .where(
                        R.environment_id == env,
                        R.upload_id == upload_id,
                        R.row_number > upload["started_through"],
                    )
                    .order_by(R.row_number)
                    .limit(settings.chunk_rows)
                )
            ).all()
            stamp = now()
            values: dict[str, Any] = {
                "state": "running",
                "updated_at": stamp,
                "started_at": upload["started_at"] or stamp,
            }
            done = len(rows) < settings.chunk_rows
            if rows:
                starts = [
                    {
                        "flowInvocationId": invocation_id_for(upload_id, r.row_number),
                        "userId": r.user_id,
                        "variables": r.variables,
                        "metadata": {**r.metadata, "listUploadId": upload_id, "listUploadRow": r.row_number},
                    }
                    for r in rows
                ]
                try:
                    result = await triggers.start_single_user_flows(
                        hub,
                        tx,
                        env,
                        upload["flow_id"],
                        starts,
                        source="list",
                        batch_id=f"list:{upload_id}:{rows[-1].row_number}",
                        fan_out=False,
                    )
                except triggers.TriggerError as exc:
                    await tx.conn.execute(
                        update(tables.upload)
                        .where(U.environment_id == env, U.id == upload_id)
                        .values(state="failed", error=str(exc), updated_at=stamp, completed_at=stamp)
                    )
                    log.warning("list_upload_failed", upload=upload_id, error=str(exc))
                    return started
                await bulk_insert(
                    tx.conn,
                    tables.error,
                    [
                        {
                            "environment_id": env,
                            "upload_id": upload_id,
                            "row_number": rows[index].row_number,
                            "reason": f"when starting: {issue.field}: {issue.reason}"[:500],
                        }
                        for index, issue in result["rejected"]
                    ],
                    ignore=["environment_id", "upload_id", "row_number"],
                )
                count = result["started"] + result["existing"]
                started += count
                values.update(
                    started_through=rows[-1].row_number,
                    rows_started=U.rows_started + count,
                    rows_rejected=U.rows_rejected + len(result["rejected"]),
                )
            if done or time.monotonic() > deadline:
                # The rows' flows run once their invocations are recorded: fanning out while the
                # rest of the list is still being recorded would take turns with it for the
                # same workers and database, and the list would take several times as long.
                await _fan_out_recorded(tx, env, upload_id, rows[-1].row_number if rows else 0)
            if done:
                values.update(state="completed", completed_at=stamp)
            elif time.monotonic() > deadline:
                await tx.enqueue(
                    "list_upload_run",
                    [env, upload_id],
                    job_id=f"list_upload:{env}:{upload_id}:{rows[-1].row_number}",
                )
            await tx.conn.execute(
                update(tables.upload).where(U.environment_id == env, U.id == upload_id).values(**values)
            )
        if done or time.monotonic() > deadline:
            return started


async def _fan_out_recorded(tx: Any, env: str, upload_id: str, through: int) -> None:
    """Enqueue (after ``tx`` commits) the fan-out of every invocation of the upload still
    ``pending``: this job's rows, and those of an earlier run that died before it could."""
    prefix = invocation_id_for(upload_id, 0)[:-1]  # "list:<upload>:"
    V = core_tables.invocation.c
    pending = [i for (i,) in await tx.conn.execute(select(V.id).where(
        V.environment_id == env, V.id >= prefix, V.id < prefix[:-1] + ";", V.status == "pending"))]
    await triggers.enqueue_fanout(tx, env, pending, f"list:{upload_id}:f{through}")


async def list_upload_sweep(ctx: dict[str, Any]) -> int:
    """Cron job, the safety net: an upload still ``receiving`` long after its last batch lost its
    request (the process died): mark it failed and drop its rows. An upload ``queued`` or
    ``running`` without progress for a minute lost its job (a job that failed every try, a flushed
    queue): enqueue a new one (runs of the same upload take turns on its row, so this is safe)."""
    hub: Hub = ctx["hub"]
    stamp = now()
    cutoff = stamp - timedelta(seconds=hub.plugin_settings["list_upload"].stale_receiving_seconds)
    async with hub.db.connect() as conn:
        stale = (await conn.execute(select(U.environment_id, U.id).where(
            U.state == "receiving", U.updated_at < cutoff).limit(100))).all()
        stalled = (await conn.execute(select(U.environment_id, U.id, U.started_through).where(
            U.state.in_(("queued", "running")), U.updated_at < stamp - timedelta(seconds=STALL_SECONDS))
            .limit(100))).all()
    for env, upload_id in stale:
        async with hub.db.begin() as conn:
            await conn.execute(delete(tables.row).where(R.environment_id == env, R.upload_id == upload_id))
            await conn.execute(update(tables.upload).where(
                U.environment_id == env, U.id == upload_id, U.state == "receiving").values(
                state="failed", error="the upload was interrupted while the file was being received",
                updated_at=stamp, completed_at=stamp))
    bucket = int(stamp.timestamp()) // 300
    for env, upload_id, through in stalled:
        await queue.enqueue(hub.redis, "list_upload_run", [env, upload_id],
                            f"list_upload:{env}:{upload_id}:sweep:{through}:{bucket}")
    return len(stale) + len(stalled)
