"""Analytics events: recorded with the change that caused them, announced after commit, read back.

:func:`record_events` writes events in the caller's transaction (so an event exists exactly when
its change does) and enqueues one outbox job that hands them to ``hub_analytics_event`` plugins
after the commit. Reads go oldest first, on the keyset ``(timestamp, id)``: pages with
:func:`query_events`, whole ranges streamed in batches with :func:`export_events`. Custom events
from the customer's backend come in through :func:`record_custom_events`.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec
from sqlalchemy import Select, func, select, tuple_

from hub.core import analytics as core
from hub.core.analytics import AnalyticsError
from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.db import bulk_insert, tables
from hub.hookspecs import hookimpl
from hub.logging import get_logger
from hub.plugins import call_hook
from hub.services.customers import ensure_customers
from hub.services.outbox import Transaction, transaction

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

A = tables.analytics_event.c
ANNOUNCE_JOB: Final = "announce_analytics_events"
EXPORT_BATCH: Final = 1000
EXPORT_FORMATS: Final = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_WRITE_CHUNK = 500  # rows per INSERT on SQLite: keeps it under its limit on bound variables
_LOAD_CHUNK = 500


# --- recording ------------------------------------------------------------------------------


async def record_events(tx: Transaction, env: str, events: Sequence[dict[str, Any]], *,
                        announce: bool = True, new_ids: bool = False) -> None:
    """Store ``events`` (built by :func:`hub.core.analytics.build_event`) in ``tx``.

    With ``announce`` (pass ``bool(hub.pm.hook.hub_analytics_event.get_hookimpls())`` to skip the
    job when no plugin listens) one outbox job, ``announce_analytics_events``, hands them to
    ``hub_analytics_event`` after the commit. An event whose id is already stored is ignored, so
    recording the same events twice stores them once. ``new_ids`` says every event has an id
    :func:`~hub.core.analytics.build_event` just made up (none can be stored yet): they are then
    written without that check, which is cheaper for large batches.
    """
    if not events:
        return
    rows = [{"environment_id": env, **core.event_columns(e), "body": dict(e)} for e in events]
    step = len(rows) if tx.conn.dialect.name == "postgresql" else _WRITE_CHUNK
    for start in range(0, len(rows), step):
        await bulk_insert(tx.conn, tables.analytics_event, rows[start:start + step],
                          None if new_ids else ["id"])
    if announce:
        await tx.enqueue(ANNOUNCE_JOB, [env, [e["id"] for e in events]],
                         job_id=f"analytics:{env}:{events[0]['id']}")


async def announce_analytics_events(ctx: dict[str, Any], env: str, ids: list[str]) -> int:
    """Job: call ``hub_analytics_event`` for each event, in the order recorded (at least once).

    Returns how many events were announced. A plugin that raises makes the job retry, and the
    retry announces every event again: plugins de-duplicate on ``event["id"]``.
    """
    hub: Hub = ctx["hub"]
    if not hub.pm.hook.hub_analytics_event.get_hookimpls():
        return 0
    bodies: dict[str, dict[str, Any]] = {}
    async with hub.db.connect() as conn:
        for start in range(0, len(ids), _LOAD_CHUNK):
            # By primary key alone, the environment checked here: with the environment in the
            # WHERE clause a planner short of statistics also reads its index of every event
            # of the environment.
            rows = await conn.execute(select(A.id, A.environment_id, A.body).where(
                A.id.in_(ids[start:start + _LOAD_CHUNK])))
            bodies.update({row.id: row.body for row in rows if row.environment_id == env})
    announced = 0
    for event_id in ids:
        body = bodies.get(event_id)
        if body is None:  # erased with its customer since (GDPR): nothing to tell
            continue
        await call_hook(hub.pm, "hub_analytics_event", hub=hub, event={**body, "environmentId": env})
        announced += 1
    return announced


# --- custom events --------------------------------------------------------------------------


def _item_error(index: int, user_id: Any, issues: list[FieldIssue]) -> dict[str, Any]:
    return {
        "index": index, "userId": user_id if isinstance(user_id, str) else None, "status": "error",
        "errors": [{"field": f"events[{index}]" + (f".{i.field}" if i.field else ""),
                    "reason": i.reason} for i in issues],
    }


async def record_custom_events(hub: Hub, env: str, items: Sequence[Any]) -> dict[str, Any]:
    """Store the valid items of ``POST /v1/{env}/events`` as analytics events.

    Each becomes an event named by the item, ``eventContext.actionSource = "customer"``;
    customers are created the first time an event names them. Invalid items are reported by
    index (``events[3].name``) and the valid ones are saved all the same. Returns
    ``{"results": [...], "accepted": n, "failed": n}``.
    """
    stamp = now()
    results: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        clean, issues = core.check_custom_event(item, stamp)
        if issues:
            results.append(_item_error(index, clean.get("userId"), issues))
            continue
        event = core.build_event(clean["name"], user_id=clean["userId"], timestamp=clean["timestamp"],
                                 properties=clean["properties"],
                                 event_context={"actionSource": "customer"})
        events.append(event)
        results.append({"index": index, "userId": clean["userId"], "status": "accepted",
                        "id": event["id"]})
    if events:
        announce = bool(hub.pm.hook.hub_analytics_event.get_hookimpls())
        async with transaction(hub) as tx:
            # Sorted, so two batches creating the same customers cannot deadlock on PostgreSQL.
            await ensure_customers(tx.conn, env, sorted({e["endUserId"] for e in events}))
            await record_events(tx, env, events, announce=announce)
    return {"results": results, "accepted": len(events), "failed": len(results) - len(events)}


# --- reading --------------------------------------------------------------------------------

_CURSOR_VERSION = "e1"


def encode_cursor(timestamp: datetime, event_id: str) -> str:
    """An opaque cursor for the page after the event (``timestamp``, ``event_id``)."""
    text = f"{_CURSOR_VERSION}|{timestamp.isoformat()}|{event_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The keyset a cursor from :func:`encode_cursor` names; ValueError for anything else."""
    try:
        if len(cursor) > 200:
            raise ValueError
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, stamp, event_id = text.split("|", 2)
        if version != _CURSOR_VERSION or not 1 <= len(event_id) <= 36 or "\x00" in event_id:
            raise ValueError
        return core.parse_timestamp(stamp), event_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this API returned") from None


def _range(query: Select[Any], start: datetime | None, end: datetime | None) -> Select[Any]:
    if start is not None:
        query = query.where(A.timestamp >= start)
    if end is not None:
        query = query.where(A.timestamp < end)
    return query


def _check_range(start: datetime | None, end: datetime | None) -> list[FieldIssue]:
    if start is not None and end is not None and end <= start:
        return [FieldIssue("query.to", "must be later than from")]
    return []


async def query_events(hub: Hub, env: str, *, user_id: str | None = None, names: Sequence[str] = (),
                       flow_id: str | None = None, start: datetime | None = None,
                       end: datetime | None = None, cursor: str | None = None,
                       limit: int = 100) -> dict[str, Any]:
    """One page of events, oldest first: ``{"events": [bodies], "nextCursor": str | None}``.

    ``start`` is inclusive and ``end`` exclusive; ``names`` matches any of the names. Events are
    ordered by (timestamp, id), and the cursor continues after the last event of the page, so
    following cursors visits every event in the range once. Bad input raises
    :class:`AnalyticsError` naming the query parameter (``query.cursor``, ``query.to``).
    """
    issues = _check_range(start, end)
    query = _range(select(A.id, A.timestamp, A.body).where(A.environment_id == env), start, end)
    if cursor is not None:
        try:
            query = query.where(tuple_(A.timestamp, A.id) > decode_cursor(cursor))
        except ValueError as exc:
            issues.append(FieldIssue("query.cursor", str(exc)))
    if issues:
        raise AnalyticsError(issues)
    if user_id is not None:
        query = query.where(A.user_id == user_id)
    if names:
        query = query.where(A.name.in_(list(dict.fromkeys(names))))
    if flow_id is not None:
        query = query.where(A.flow_id == flow_id)
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(A.timestamp, A.id).limit(limit + 1))).all()
    page = rows[:limit]
    return {"events": [row.body for row in page],
            "nextCursor": encode_cursor(page[-1].timestamp, page[-1].id) if len(rows) > limit else None}



async def recent_events(hub: Hub, env: str, *, user_id: str, cursor: str | None = None,
                        limit: int = 50) -> dict[str, Any]:
    """One page of a customer's events, newest first (staff tools): ``{"events", "nextCursor"}``;
    the cursor continues with older events. A bad cursor raises :class:`AnalyticsError`."""
    query = select(A.id, A.timestamp, A.body).where(A.environment_id == env, A.user_id == user_id)
    if cursor is not None:
        try:
            query = query.where(tuple_(A.timestamp, A.id) < decode_cursor(cursor))
        except ValueError as exc:
            raise AnalyticsError([FieldIssue("query.cursor", str(exc))]) from None
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(A.timestamp.desc(), A.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {"events": [row.body for row in page],
            "nextCursor": encode_cursor(page[-1].timestamp, page[-1].id) if len(rows) > limit else None}


async def last_card_events(hub: Hub, env: str, user_id: str, card_ids: Sequence[str],
                           names: Sequence[str]) -> dict[str, datetime]:
    """For each of a customer's cards, when it last had one of the events ``names`` (cards
    without one are left out): when the customer last saw a card, or last acted on it."""
    if not card_ids or not names:
        return {}
    found: dict[str, datetime] = {}
    async with hub.db.connect() as conn:
        for lo in range(0, len(card_ids), _LOAD_CHUNK):
            rows = await conn.execute(
                select(A.card_id, func.max(A.timestamp)).where(
                    A.environment_id == env, A.user_id == user_id,
                    A.card_id.in_(list(card_ids[lo:lo + _LOAD_CHUNK])), A.name.in_(list(names)))
                .group_by(A.card_id))
            found.update({card_id: at for card_id, at in rows})
    return found

def export_events(hub: Hub, env: str, *, start: datetime | None = None, end: datetime | None = None,
                  fmt: str = "ndjson", batch: int = EXPORT_BATCH) -> AsyncIterator[bytes]:
    """Stream every event in [start, end), oldest first, as NDJSON or CSV.

    NDJSON: one event body per line. CSV: a header of :data:`hub.core.analytics.CSV_COLUMNS`,
    then one row per event (objects as JSON strings). Events are read ``batch`` at a time on the
    keyset, each batch on a connection of its own, so neither memory nor a database connection
    is held for the whole range however slowly the client reads. Arguments are checked here, at
    the call, so a bad one raises :class:`AnalyticsError` before anything is sent.
    """
    issues = _check_range(start, end)
    if fmt not in EXPORT_FORMATS:
        issues.append(FieldIssue("query.format", f"must be one of {sorted(EXPORT_FORMATS)}"))
    if issues:
        raise AnalyticsError(issues)
    return _export(hub, env, start, end, fmt, batch)


async def _export(hub: Hub, env: str, start: datetime | None, end: datetime | None, fmt: str,
                  batch: int) -> AsyncIterator[bytes]:
    if fmt == "csv":
        yield _csv([list(core.CSV_COLUMNS)])
    query = _range(select(A.id, A.timestamp, A.body).where(A.environment_id == env), start, end)
    after: tuple[datetime, str] | None = None
    total = 0
    while True:
        page = query if after is None else query.where(tuple_(A.timestamp, A.id) > after)
        async with hub.db.connect() as conn:
            rows = (await conn.execute(page.order_by(A.timestamp, A.id).limit(batch))).all()
        if not rows:
            break
        if fmt == "csv":
            yield _csv([core.csv_row(row.body) for row in rows])
        else:
            yield b"".join(msgspec.json.encode(row.body) + b"\n" for row in rows)
        total += len(rows)
        if len(rows) < batch:
            break
        after = (rows[-1].timestamp, rows[-1].id)
    log.info("analytics_exported", env=env, format=fmt, events=total)


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(announce_analytics_events)
