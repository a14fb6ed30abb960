"""``Database.read``: the hot read path, and on PostgreSQL the lean pool of connections under it."""

import asyncio
import os

import asyncpg
import pytest
from sqlalchemy import bindparam, select, text

from hub.db import ReadPool, tables

C = tables.customer.c
BY_ID = select(C.user_id, C.fields).where(C.environment_id == bindparam("env"), C.user_id == bindparam("u"))

postgres_only = pytest.mark.skipif(not os.environ.get("HUB_TEST_DATABASE_URL", "").startswith("postgresql"),
                                   reason="the read pool is PostgreSQL's (SQLite reads on the event loop)")


async def test_reads_return_typed_rows(hub, hub_env):
    from hub.services import customers

    await customers.define_field(hub, hub_env.id, "tier", "text")
    await customers.upsert_customers(hub, hub_env.id, [{"userId": "kim", "fields": {"tier": "gold"}}])
    rows = await hub.db.read(BY_ID, {"env": hub_env.id, "u": "kim"})
    assert rows == [{"user_id": "kim", "fields": {"tier": "gold"}}]
    assert await hub.db.read(BY_ID, {"env": hub_env.id, "u": "nobody"}) == []


@postgres_only
async def test_more_concurrent_reads_than_connections_all_complete(hub):
    pool = ReadPool(_dsn(), size=2)
    try:
        reads = [pool.fetch("SELECT $1::int AS n, pg_sleep(0.01)", n) for n in range(20)]
        results = await asyncio.gather(*reads)
        assert [r[0]["n"] for r in results] == list(range(20))
        assert pool.opened == 2 and len(pool.idle) == 2
    finally:
        await pool.close()


@postgres_only
async def test_a_failed_statement_keeps_its_connection_and_a_cancelled_one_drops_it(hub):
    pool = ReadPool(_dsn(), size=1)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await pool.fetch("SELECT 1 / 0")
        assert pool.opened == 1 and len(pool.idle) == 1  # the server said no: the connection is fine
        slow = asyncio.create_task(pool.fetch("SELECT pg_sleep(5)"))
        waiting = asyncio.create_task(pool.fetch("SELECT 2 AS n"))
        await asyncio.sleep(0.2)
        slow.cancel()  # its connection's state is unknown: dropped, and the waiting read opens another
        assert (await asyncio.wait_for(waiting, 5))[0]["n"] == 2
        assert pool.opened == 1 and len(pool.idle) == 1
    finally:
        await pool.close()


@postgres_only
async def test_a_reader_cancelled_while_waiting_leaks_no_connection(hub):
    pool = ReadPool(_dsn(), size=1)
    try:
        holder = asyncio.create_task(pool.fetch("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(pool.fetch("SELECT 1"))
        await asyncio.sleep(0.05)
        waiter.cancel()
        await holder
        assert (await pool.fetch("SELECT 3 AS n"))[0]["n"] == 3
        assert pool.opened == 1
    finally:
        await pool.close()


@postgres_only
async def test_a_connection_the_server_closed_is_replaced(hub):
    pool = ReadPool(_dsn(), size=1)
    try:
        pid = (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        async with hub.db.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(50):  # the client notices the close
            if pool.idle[0].is_closed():
                break
            await asyncio.sleep(0.02)
        assert (await pool.fetch("SELECT 4 AS n"))[0]["n"] == 4  # on a new connection, no error
        assert (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"] != pid
        assert pool.opened == 1
    finally:
        await pool.close()


def _dsn() -> str:
    return os.environ["HUB_TEST_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
