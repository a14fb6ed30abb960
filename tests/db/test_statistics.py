"""``analyze_tables``: on PostgreSQL, Hub analyses its own tables whose statistics are stale
(when the server's autovacuum does not), and leaves fresh ones alone."""

import asyncio
import os

import msgspec
import pytest
from sqlalchemy import text

from hub.services import customers
from hub.services.statistics import analyze_stale_tables

on_postgresql = os.environ.get("HUB_TEST_DATABASE_URL", "").startswith("postgresql")


async def _changed_since_analysed(hub, table: str) -> int:
    async with hub.db.connect() as conn:
        return (await conn.execute(text(
            "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :t"), {"t": table})).scalar()


async def _load(hub, env: str, count: int) -> None:
    for lo in range(0, count, 1000):
        await customers.upsert_customers(hub, env, [{"userId": f"u{n:05}", "tags": ["all"]}
                                                    for n in range(lo, min(count, lo + 1000))])
    if on_postgresql:
        await _counted(hub, count)


async def _counted(hub, count: int) -> None:
    """Wait until the server's activity statistics show the writes (backends report them up to
    a second after their commits)."""
    query = text("SELECT min(n_mod_since_analyze) FROM pg_stat_user_tables "
                 "WHERE relname IN ('hub_customer', 'hub_customer_tag')")
    for _ in range(100):
        async with hub.db.connect() as conn:
            if ((await conn.execute(query)).scalar() or 0) >= count:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the writes never showed in pg_stat_user_tables")


@pytest.mark.skipif(not on_postgresql, reason="statistics are PostgreSQL's")
async def test_tables_changed_beyond_the_threshold_are_analysed_once(hub, hub_env):
    hub.settings = msgspec.structs.replace(hub.settings, db_analyze="always")
    await _load(hub, hub_env.id, 2500)
    analysed = await analyze_stale_tables(hub)
    assert {"hub_customer", "hub_customer_tag"} <= set(analysed)
    assert await _changed_since_analysed(hub, "hub_customer") == 0
    async with hub.db.connect() as conn:
        estimate = (await conn.execute(text(
            "SELECT reltuples FROM pg_class WHERE relname = 'hub_customer'"))).scalar()
    assert estimate == 2500
    # Nothing changed since: nothing to do. A few more rows stay under 1,000 + 10%.
    assert await analyze_stale_tables(hub) == []
    await customers.upsert_customers(hub, hub_env.id, [{"userId": "late"}])
    assert "hub_customer" not in await analyze_stale_tables(hub)


@pytest.mark.skipif(not on_postgresql, reason="statistics are PostgreSQL's")
async def test_never_leaves_statistics_to_the_server(hub, hub_env):
    hub.settings = msgspec.structs.replace(hub.settings, db_analyze="never")
    await _load(hub, hub_env.id, 1500)
    assert await analyze_stale_tables(hub) == []
    assert await _changed_since_analysed(hub, "hub_customer") >= 1500


async def test_auto_follows_the_servers_autovacuum(hub, hub_env):
    await _load(hub, hub_env.id, 1500)
    analysed = await analyze_stale_tables(hub)
    if not on_postgresql:
        assert analysed == []  # SQLite: nothing to do
        return
    async with hub.db.connect() as conn:
        autovacuum = (await conn.execute(text("SELECT current_setting('autovacuum')"))).scalar()
    assert ("hub_customer" in analysed) == (autovacuum == "off")
