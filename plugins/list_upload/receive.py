"""Receiving an upload: the CSV is read as it streams in, rows checked and written in batches.

:func:`receive_upload` is what the API and ``hub upload`` both call. The upload row is written
first (state ``receiving``); valid rows and rejected rows are written a batch per transaction as
the file arrives; at the end one transaction marks the upload ``queued`` with its counts and
content hash and, through the outbox, enqueues the job that starts its rows. So a 202 means the
upload is durable. An upload Hub refuses (a limit, a bad header, a duplicate) is deleted with
its rows before the error is raised.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text, update

from hub.core.clock import now
from hub.core.customers import check_user_id
from hub.core.flows import FlowDefinition
from hub.core.variables import resolve_variables
from hub.db import bulk_insert, lock_for_write
from hub.services.flows import FLOW_ID, FlowArchived, FlowNotFound, FlowNotPublished, published_definition
from hub.services.outbox import transaction
from hub_plugins.list_upload import tables
from hub_plugins.list_upload.csvstream import RecordReader, UploadRefused

if TYPE_CHECKING:
    from hub.app import Hub

U = tables.upload.c
COLUMN_MAX = 200
REASON_MAX = 500
UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns hold what: the user id, flow variables (name → column), metadata columns."""

    user_column: str
    variables: dict[str, str] = field(default_factory=dict)
    metadata_columns: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "userColumn": self.user_column,
            "variables": dict(self.variables),
            "metadataColumns": list(self.metadata_columns),
        }


def parse_mapping(
    source: str, user_column: str | None, variables: list[str], metadata_columns: list[str]
) -> ColumnMapping:
    """The mapping from request values; ``source`` is ``query`` or ``form`` (names the field)."""
    if not user_column:
        raise UploadRefused(422, f"{source}.userColumn", "required: the column holding the user id")
    _check_column(f"{source}.userColumn", user_column)
    named: dict[str, str] = {}
    for item in variables:
        name, sep, column = item.partition(":")
        if not sep or not name or not column:
            raise UploadRefused(
                422, f"{source}.variable", f"{item!r}: must be name:column (variable name, then its column)"
            )
        _check_column(f"{source}.variable", column)
        if name in named:
            raise UploadRefused(422, f"{source}.variable", f"variable {name!r} is mapped twice")
        named[name] = column
    for column in metadata_columns:
        _check_column(f"{source}.metadataColumn", column)
    return ColumnMapping(user_column, named, tuple(dict.fromkeys(metadata_columns)))


def _check_column(field_name: str, column: str) -> None:
    if not column or len(column) > COLUMN_MAX or UNSAFE.search(column):
        raise UploadRefused(
            422, field_name, f"a column name is 1-{COLUMN_MAX} characters without control characters"
        )


async def startable_flow(hub: Hub, env: str, flow_id: str, field_name: str) -> FlowDefinition:
    """The published definition of ``flow_id``, which must accept list uploads."""
    if not isinstance(flow_id, str) or not FLOW_ID.match(flow_id):
        raise UploadRefused(422, field_name, "must be a flow id (lowercase letters, digits, _ and -)")
    async with hub.db.connect() as conn:
        try:
            _version, defn = await published_definition(conn, env, flow_id)
        except FlowNotFound:
            raise UploadRefused(404, field_name, f"no flow {flow_id!r} in this environment") from None
        except (FlowNotPublished, FlowArchived) as exc:
            raise UploadRefused(409, field_name, str(exc)) from None
    if not defn.allows("list"):
        raise UploadRefused(
            403, field_name, f"flow {flow_id!r} does not accept list uploads (its triggers.list is false)"
        )
    return defn


def check_mapping_against(defn: FlowDefinition, mapping: ColumnMapping, source: str) -> None:
    """Every mapped variable exists; every required variable without a default is mapped."""
    declared = {v.name: v for v in defn.variables}
    for name in mapping.variables:
        if name not in declared:
            raise UploadRefused(
                422,
                f"{source}.variable",
                f"{name!r} is not a variable of this flow (variables: {', '.join(declared) or 'none'})",
            )
    for v in defn.variables:
        if v.required and v.default is None and v.overridable and v.name not in mapping.variables:
            raise UploadRefused(
                422,
                f"{source}.variable",
                f"variable {v.name!r} is required: map it to a column ({v.name}:COLUMN)",
            )


@dataclass
class _Layout:
    """Column positions found in the header."""

    names: list[str]
    user: int
    variables: list[tuple[str, str, int]]  # (variable, column, index)
    metadata: list[tuple[str, int]]


def _layout(header: list[str], mapping: ColumnMapping, source: str) -> _Layout:
    if not header or not any(cell.strip() for cell in header):
        raise UploadRefused(422, "body", "the first row must be a header naming the columns")
    names = [cell.strip() for cell in header]
    where = {name: i for i, name in reversed(list(enumerate(names)))}

    def find(column: str, field_name: str) -> int:
        if column not in where:
            shown = ", ".join(repr(n) for n in names[:20])
            raise UploadRefused(422, field_name, f"no column {column!r} in the header (columns: {shown})")
        return where[column]

    return _Layout(
        names=names,
        user=find(mapping.user_column, f"{source}.userColumn"),
        variables=[
            (name, column, find(column, f"{source}.variable")) for name, column in mapping.variables.items()
        ],
        metadata=[(column, find(column, f"{source}.metadataColumn")) for column in mapping.metadata_columns],
    )


def check_row(
    defn: FlowDefinition, layout: _Layout, record: list[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """A stored row ``{user_id, variables, metadata}`` or the reason the record is rejected."""
    if len(record) != len(layout.names):
        return None, f"has {len(record)} fields where the header has {len(layout.names)}"
    user_id = record[layout.user].strip()
    issues = check_user_id(user_id, "user id")
    if issues:
        return None, f"user id (column {layout.names[layout.user]!r}): {issues[0].reason}"
    given = {name: record[i] for name, _column, i in layout.variables if record[i] != ""}
    values, var_issues = resolve_variables(defn.variables, given, coerce_strings=True)
    if var_issues:
        name = var_issues[0].field.removeprefix("variables.")
        column = next((c for n, c, _i in layout.variables if n == name), None)
        where = f"column {column!r} (variable {name})" if column else f"variable {name}"
        return None, f"{where}: {var_issues[0].reason}"
    metadata = {column: record[i] for column, i in layout.metadata}
    return {"user_id": user_id, "variables": {k: values[k] for k in given}, "metadata": metadata}, None


@dataclass
class _Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0


async def receive_upload(
    hub: Hub,
    env: str,
    *,
    flow_id: str,
    mapping: ColumnMapping,
    chunks: AsyncIterator[bytes],
    filename: str | None = None,
    allow_duplicate: bool = False,
    source: str = "query",
) -> dict[str, Any]:
    """Read the CSV from ``chunks``, store it and queue it; returns the upload (state ``queued``).

    Raises :class:`UploadRefused` (nothing is kept then)."""
    settings = hub.plugin_settings["list_upload"]
    defn = await startable_flow(hub, env, flow_id, f"{source}.flowConfigId")
    check_mapping_against(defn, mapping, source)
    upload_id = str(uuid.uuid4())
    stamp = now()
    async with hub.db.begin() as conn:
        await conn.execute(
            tables.upload.insert().values(
                environment_id=env,
                id=upload_id,
                flow_id=flow_id,
                filename=_clean_filename(filename),
                content_hash=None,
                mapping=mapping.to_json(),
                state="receiving",
                rows_read=0,
                rows_valid=0,
                rows_started=0,
                rows_rejected=0,
                started_through=0,
                error=None,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    try:
        digest = await _read_rows(hub, env, upload_id, defn, mapping, chunks, settings, source)
        return await _queue(hub, env, upload_id, flow_id, digest, allow_duplicate)
    except BaseException:
        await discard(hub, env, upload_id)
        raise


async def _read_rows(
    hub: Hub,
    env: str,
    upload_id: str,
    defn: FlowDefinition,
    mapping: ColumnMapping,
    chunks: AsyncIterator[bytes],
    settings: Any,
    source: str,
) -> str:
    """Parse and store every record; returns the SHA-256 of the CSV bytes."""
    digest = hashlib.sha256()
    reader = RecordReader(settings.max_record_bytes)
    layout: _Layout | None = None
    batch = _Batch()
    number = 0  # the CSV record number; the header is row 1

    async def take(records: list[list[str]], last: bool) -> None:
        nonlocal layout, number
        for index, record in enumerate(records):
            number += 1
            if layout is None:
                layout = _layout(record, mapping, source)
                continue
            if not record or record == [""]:
                continue  # a blank line
            batch.read += 1
            if batch.read > settings.max_rows:
                raise UploadRefused(
                    413, "body", f"has more than {settings.max_rows} rows (HUB_LIST_UPLOAD_MAX_ROWS)"
                )
            if last and reader.unterminated and index == len(records) - 1:
                row, reason = None, "a quoted field is not closed before the end of the file"
            else:
                row, reason = check_row(defn, layout, record)
            if row is None:
                batch.errors.append(
                    {
                        "environment_id": env,
                        "upload_id": upload_id,
                        "row_number": number,
                        "reason": str(reason)[:REASON_MAX],
                    }
                )
            else:
                batch.rows.append(
                    {"environment_id": env, "upload_id": upload_id, "row_number": number, **row}
                )
        if len(batch.rows) + len(batch.errors) >= settings.write_batch_rows:
            await _write(hub, env, upload_id, batch)

    async for chunk in chunks:
        digest.update(chunk)
        await take(reader.feed(chunk), last=False)
    await take(reader.finish(), last=True)
    if layout is None:
        raise UploadRefused(422, "body", "is empty: send a CSV file whose first row names the columns")
    if batch.read == 0:
        raise UploadRefused(422, "body", "has a header but no data rows")
    await _write(hub, env, upload_id, batch)
    return digest.hexdigest()


async def _write(hub: Hub, env: str, upload_id: str, batch: _Batch) -> None:
    async with hub.db.begin() as conn:
        await bulk_insert(conn, tables.row, batch.rows)
        await bulk_insert(conn, tables.error, batch.errors)
        await conn.execute(
            update(tables.upload)
            .where(U.environment_id == env, U.id == upload_id)
            .values(
                rows_read=batch.read,
                rows_valid=U.rows_valid + len(batch.rows),
                rows_rejected=U.rows_rejected + len(batch.errors),
                updated_at=now(),
            )
        )
    batch.rows, batch.errors = [], []


async def _lock_file(conn: Any, env: str, flow_id: str, digest: str) -> None:
    """Serialize, until the transaction ends, the duplicate check of one file for one flow: two
    identical uploads finishing together must not both find no earlier one. SQLite: take its
    write lock now; PostgreSQL: a transaction-level advisory lock on the (env, flow, file) key."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"list_upload\0{env}\0{flow_id}\0{digest}".encode()).digest()[:8],
                             "big", signed=True)
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        await lock_for_write(conn)


async def _queue(
    hub: Hub, env: str, upload_id: str, flow_id: str, digest: str, allow_duplicate: bool
) -> dict[str, Any]:
    from hub_plugins.list_upload.service import get_upload

    stamp = now()
    async with transaction(hub) as tx:
        # The check and the state change in one transaction under the lock: an upload that
        # finishes meanwhile either is seen here or sees this one.
        await _lock_file(tx.conn, env, flow_id, digest)
        earlier = (
            await tx.conn.execute(
                select(U.id)
                .where(
                    U.environment_id == env,
                    U.flow_id == flow_id,
                    U.content_hash == digest,
                    U.state != "failed",
                    U.id != upload_id,
                )
                .order_by(U.created_at)
                .limit(1)
            )
        ).scalar()
        if earlier is not None and not allow_duplicate:
            raise UploadRefused(
                409,
                "query.allowDuplicate",
                f"this file was already uploaded for flow {flow_id!r} as upload {earlier}; "
                "set allowDuplicate=true to start it again",
                {"earlierUploadId": earlier},
            )
        await tx.conn.execute(
            update(tables.upload)
            .where(U.environment_id == env, U.id == upload_id)
            .values(state="queued", content_hash=digest, queued_at=stamp, updated_at=stamp)
        )
        await tx.enqueue("list_upload_run", [env, upload_id], job_id=f"list_upload:{env}:{upload_id}:0")
    return await get_upload(hub, env, upload_id)


async def discard(hub: Hub, env: str, upload_id: str) -> None:
    """Delete an upload that was refused, with everything written for it."""
    async with hub.db.begin() as conn:
        for table in (tables.row, tables.error):
            await conn.execute(
                delete(table).where(table.c.environment_id == env, table.c.upload_id == upload_id)
            )
        await conn.execute(delete(tables.upload).where(U.environment_id == env, U.id == upload_id))


def _clean_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = UNSAFE.sub("", name.replace("\\", "/").rsplit("/", 1)[-1])
    return name[:255] or None
