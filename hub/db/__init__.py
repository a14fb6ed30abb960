"""The database: one async SQLAlchemy engine per process, SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event, false, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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
_JSON = {"json_serializer": lambda value: msgspec.json.encode(value).decode(),
         "json_deserializer": msgspec.json.decode}


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **_JSON)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True, **_JSON)


class Database:
    """Owns the engine. ``async with db.begin() as conn`` is one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.engine = make_engine(settings.database_url, settings.db_pool_size)
        self.dialect = self.engine.dialect.name

    def begin(self) -> Any:
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


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
