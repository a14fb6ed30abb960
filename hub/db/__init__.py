"""The database: one async SQLAlchemy engine per process, SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import functools
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import JSON, event, false, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from hub.db import tables
from hub.settings import Settings

__all__ = ["Database", "tables"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer commits; NORMAL sync is durable across process crashes
    # (only an OS crash or power loss can lose the last transactions).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# msgspec is several times faster than the json module for the JSON columns.
_JSON_ENCODER = msgspec.json.Encoder()
_JSON = {"json_serializer": lambda value: _JSON_ENCODER.encode(value).decode(),
         "json_deserializer": msgspec.json.decode}


# Every statement is planned for its own parameters. asyncpg prepares each statement once per
# connection, and PostgreSQL would switch it to a generic plan after five executions and keep that
# plan for the connection's life: one made while a table was nearly empty (a fresh install, the
# start of an import or a fan-out) goes on scanning the table once it holds 100,000 rows, unless
# an ANALYZE invalidates it. A custom plan costs a few tens of microseconds of planning.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **_JSON)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # pool_recycle instead of pool_pre_ping: a ping is a round trip before every checkout. No
    # overflow: an overflow connection is opened and closed per checkout, which under load costs
    # more than waiting for a pooled one.
    return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=30,
                               pool_recycle=1800, connect_args={"server_settings": dict(SERVER_SETTINGS)},
                               **_JSON)


def _sqlite_reader(database_url: str) -> sqlite3.Connection:
    """One pysqlite connection for :meth:`Database.read`, used only on the event loop thread."""
    path = make_url(database_url).database or ":memory:"
    conn = sqlite3.connect(path, timeout=1, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=1000")
    return conn


class Database:
    """Owns the engines. ``async with db.begin() as conn`` is one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.engine = make_engine(settings.database_url, settings.db_pool_size)
        self.dialect = self.engine.dialect.name
        self.pool_size = settings.db_pool_size
        self._sqlite_reader: sqlite3.Connection | None = None
        self._pg_pool: ReadPool | None = None
        self._pg_lock = asyncio.Lock()
        self._compiled: dict[int, tuple[str, list[str], Any]] = {}

    async def read(self, statement: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one read-only SELECT and return its rows as dicts, as cheaply as the backend allows.

        For the hottest reads (a customer by id, a feed): SQL compiled once per statement (build
        statements once, at import time), executed on the bare driver, results converted by the
        columns' own SQLAlchemy types. On SQLite it runs synchronously on the event loop: a WAL
        reader never waits for writers, and an indexed lookup costs tens of microseconds, far
        less than aiosqlite's thread hand-offs. On PostgreSQL it runs on a small asyncpg pool of
        its own, outside any transaction: one round trip, no BEGIN/ROLLBACK.
        """
        params = params or {}
        sql, names, columns, processors, _ = self._compile(statement)
        values = [params[name] for name in names]
        if self.dialect == "sqlite":
            if self._sqlite_reader is None:
                self._sqlite_reader = _sqlite_reader(self.url)
            cursor = self._sqlite_reader.execute(sql, values)
            rows: Any = cursor.fetchall()
            if not columns:  # a textual statement: no column types to convert with
                return [dict(zip([d[0] for d in cursor.description or []], row, strict=True)) for row in rows]
        else:
            pool = self._pg_pool or await self._start_pg_pool()
            rows = await pool.fetch(sql, *values)
            if not columns:
                return [dict(row) for row in rows]
        return [{column: (process(value) if process else value)
                 for column, process, value in zip(columns, processors, row, strict=True)}
                for row in rows]

    def _compile(self, statement: Any) -> tuple[str, list[str], list[str], list[Any], Any]:
        found = self._compiled.get(id(statement))
        if found is None or found[4] is not statement:
            dialect = self.engine.dialect
            compiled = statement.compile(dialect=dialect)
            columns = [c[0] for c in compiled._result_columns]
            types = [c[3] for c in compiled._result_columns]
            processors = [None if self.dialect == "postgresql" and isinstance(t, JSON)
                          else t._cached_result_processor(dialect, None) for t in types]
            if self.dialect == "postgresql":  # asyncpg already returns datetimes and decoded JSON
                processors = [p if isinstance(t, TypeDecorator) else None
                              for p, t in zip(processors, types, strict=True)]
            found = (str(compiled), list(compiled.positiontup or []), columns, processors, statement)
            self._compiled[id(statement)] = found
        return found

    async def _start_pg_pool(self) -> ReadPool:
        async with self._pg_lock:
            if self._pg_pool is None:
                url = make_url(self.url).set(drivername="postgresql")
                self._pg_pool = ReadPool(url.render_as_string(hide_password=False), self.pool_size)
        return self._pg_pool

    def begin(self) -> Any:
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sqlite_reader is not None:
            self._sqlite_reader.close()
            self._sqlite_reader = None
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None


class ReadPool:
    """The PostgreSQL connections :meth:`Database.read` runs its single statements on.

    Leaner than ``asyncpg.Pool`` (whose acquire and release cost about as much CPU as a small
    query itself): connections are opened on demand up to ``size``, handed straight from one
    reader to the next waiting one, never reset (they only ever run single read-only
    statements outside any transaction), and dropped when anything but a server-side error
    interrupts a statement (a lost connection, a cancelled request), since such a connection's
    state is unknown.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self.size = max(1, size)
        self.idle: list[asyncpg.Connection] = []
        self.opened = 0
        self.waiters: collections.deque[asyncio.Future[asyncpg.Connection | None]] = collections.deque()
        self.closed = False

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        conn = await self._acquire()
        try:
            rows = await conn.fetch(sql, *args)
        except asyncpg.PostgresError:  # the statement failed on the server: the connection is fine
            self._release(conn)
            raise
        except BaseException:
            self._drop(conn)
            raise
        self._release(conn)
        return rows

    async def _acquire(self) -> asyncpg.Connection:
        if self.closed:
            raise RuntimeError("the database is closed")
        while self.idle:
            conn = self.idle.pop()
            if not conn.is_closed():
                return conn
            self.opened -= 1  # the server closed it while it was idle
        if self.opened >= self.size:
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over just as we were cancelled
                    given = waiter.result()
                    if given is not None:
                        self._release(given)
                    else:
                        self._free_slot()
                raise
            if conn is not None:
                return conn
            # a connection was dropped: its slot is ours, open a new one
        else:
            self.opened += 1
        try:
            return await self._connect()
        except BaseException:
            self._free_slot()
            raise

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.dsn, server_settings=dict(SERVER_SETTINGS))
        for name in ("json", "jsonb"):
            await conn.set_type_codec(name, schema="pg_catalog", decoder=msgspec.json.decode,
                                      encoder=lambda v: msgspec.json.encode(v).decode())
        return conn

    def _release(self, conn: asyncpg.Connection) -> None:
        if self.closed or conn.is_closed():
            self._drop(conn)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def _drop(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        self._free_slot()

    def _free_slot(self) -> None:
        """A connection is gone: a waiting reader may open one in its place."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # keeps the slot: it opens the connection itself
                return
        self.opened -= 1

    async def close(self) -> None:
        self.closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the database is closed"))
        idle, self.idle = self.idle, []
        for conn in idle:
            await conn.close()
        self.opened -= len(idle)


async def insert_ignore(conn: AsyncConnection, table: Any, values: dict[str, Any] | list[dict[str, Any]],
                        key: list[str]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on either backend.

    One row: returns 1 if it was inserted, else 0. Several rows are sent as one executemany (its
    compiled form is cached, unlike a multi-row VALUES whose SQL changes with the row count);
    drivers do not report a reliable count for that, so it returns -1.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=key)
    if isinstance(values, list):
        if values:
            await conn.execute(stmt, values)
        return -1
    result = await conn.execute(stmt.values(values))
    return result.rowcount or 0


@functools.lru_cache(maxsize=64)
def _pg_insert(table: Any, columns: tuple[str, ...], conflict: tuple[str, ...]
               ) -> tuple[str, tuple[bool, ...]]:
    """The SQL of an asyncpg INSERT of ``columns`` and, per column, whether it holds JSON."""
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
    if conflict:
        sql += " ON CONFLICT ({}) DO NOTHING".format(", ".join(f'"{c}"' for c in conflict))
    return sql, tuple(isinstance(table.c[c].type, JSON) for c in columns)


COPY_FROM = 20
"""Fewest rows :func:`bulk_insert` sends with ``COPY`` on PostgreSQL (below, its extra round
trip costs more than it saves)."""


async def bulk_insert(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]],
                      ignore: list[str] | None = None) -> None:
    """INSERT many rows (every row with the same keys) in the caller's transaction; with
    ``ignore``, rows conflicting on those columns are skipped.

    The fan-out's hot path. On PostgreSQL the rows go to asyncpg directly (SQLAlchemy's per-row,
    per-column bind processing costs more CPU than the database's work for these batches): with
    ``ignore``, one ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``; without, from
    :data:`COPY_FROM` rows on, ``COPY``, which costs PostgreSQL about a third less per row
    (a conflict fails the whole statement either way). JSON columns are encoded as SQLAlchemy
    would (``None`` is JSON ``null``); datetimes must be timezone-aware, as
    :class:`hub.db.types.UtcDateTime` requires.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        if ignore:
            await insert_ignore(conn, table, rows, ignore)
        else:
            await conn.execute(table.insert(), rows)
        return
    columns = tuple(rows[0])
    sql, is_json = _pg_insert(table, columns, tuple(ignore or ()))
    encode = _JSON_ENCODER.encode
    args = [tuple(encode(row[c]).decode() if j else row[c] for c, j in zip(columns, is_json, strict=True))
            for row in rows]
    fairy = await conn.get_raw_connection()
    adapted = fairy.dbapi_connection  # SQLAlchemy's asyncpg adapter: join its transaction
    async with adapted._execute_mutex:
        if adapted._transaction is None:
            await adapted._start_transaction()
        try:
            if not ignore and len(args) >= COPY_FROM:
                await adapted._connection.copy_records_to_table(table.name, records=args, columns=columns)
            else:
                await adapted._connection.executemany(sql, args)
        except asyncpg.IntegrityConstraintViolationError as exc:  # callers catch SQLAlchemy's
            raise IntegrityError(sql, None, exc) from exc
        except asyncpg.PostgresError as exc:
            raise DBAPIError(sql, None, exc) from exc


async def lock_for_write(conn: AsyncConnection) -> None:
    """Start the transaction as a writer, so what it reads cannot change before it writes.

    pysqlite begins a transaction only at the first write: reads before it see whatever is
    committed, and a read-then-write could lose another writer's change. A write that matches
    no row takes SQLite's write lock up front (other writers wait on ``busy_timeout``).
    PostgreSQL callers lock the rows they read with ``SELECT ... FOR UPDATE`` instead.
    """
    if conn.dialect.name == "sqlite":
        await conn.execute(update(tables.environment).where(false()).values(name=tables.environment.c.name))


def upsert_statement(conn: AsyncConnection, table: Any) -> Any:
    """The dialect's ``insert`` that supports ``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
