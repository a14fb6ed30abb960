"""On PostgreSQL every statement Hub sends is planned for its own parameters.

asyncpg prepares each statement once per connection. Left to itself, PostgreSQL switches a
prepared statement to a *generic* plan after five executions and keeps it for the connection's
life; a generic plan made while a table was nearly empty (a fresh install, the start of an
import or of a fan-out) keeps scanning the whole table once it holds 100,000 rows, unless an
ANALYZE happens to invalidate it. Hub's connections therefore set ``plan_cache_mode`` to
``force_custom_plan``. A custom plan shows the parameters' values where a generic one shows
``$1``: that is what these tests look at.
"""

import os

import pytest
from sqlalchemy import text

from hub.db import ReadPool

pytestmark = pytest.mark.skipif(not os.environ.get("HUB_TEST_DATABASE_URL", "").startswith("postgresql"),
                                reason="plan caching is PostgreSQL's")

SETUP = ["CREATE TEMP TABLE plan_probe (id bigserial PRIMARY KEY, k text NOT NULL)",
         "CREATE INDEX ON plan_probe (k)",
         "PREPARE probe(text[]) AS SELECT id FROM plan_probe WHERE k = ANY($1)"]
GROW = "INSERT INTO plan_probe (k) SELECT 'k' || g FROM generate_series(1, 20000) g"
EXPLAIN = "EXPLAIN EXECUTE probe(ARRAY['k1', 'k2'])"


def planned_for_the_values(plan: list[str]) -> bool:
    text_plan = "\n".join(plan)
    assert "plan_probe" in text_plan
    return "$1" not in text_plan and "k1" in text_plan


async def test_the_hubs_connections_plan_each_execution_for_its_values(hub):
    async with hub.db.engine.connect() as conn:
        for statement in SETUP:
            await conn.execute(text(statement))
        for _ in range(8):  # past the five executions after which PostgreSQL may go generic
            await conn.execute(text("EXECUTE probe(ARRAY['a', 'b'])"))
        await conn.execute(text(GROW))
        plan = [row[0] for row in await conn.execute(text(EXPLAIN))]
        assert planned_for_the_values(plan), plan
        await conn.rollback()


async def test_the_read_pools_connections_plan_each_execution_for_its_values(hub):
    pool = ReadPool(os.environ["HUB_TEST_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://"),
                    size=1)
    try:
        for statement in SETUP:
            await pool.fetch(statement)
        for _ in range(8):
            await pool.fetch("EXECUTE probe(ARRAY['a', 'b'])")
        await pool.fetch(GROW)
        plan = [row[0] for row in await pool.fetch(EXPLAIN)]
        assert planned_for_the_values(plan), plan
    finally:
        await pool.close()
