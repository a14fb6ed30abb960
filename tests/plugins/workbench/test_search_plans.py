"""On PostgreSQL, every customer search statement is served by an index of migration 0004 (or
the unique user-id index): no sequential scan of ``hub_customer``, with the plans PostgreSQL
uses for prepared statements, both custom (values known) and generic (values unknown)."""

from __future__ import annotations

import json
import os
from typing import Any

import asyncpg
import pytest

from hub.services import customers as customer_service
from hub_plugins.workbench import search as search_service

pytestmark = pytest.mark.skipif(
    not os.environ.get("HUB_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the search's indexes exist on PostgreSQL only")

PARAMS = {
    "user_id_exact": ({"value": "cust-00042"}, "uq_hub_customer_env_user"),
    "user_id_prefix": ({"prefix": "cust-000", "upper": "cust-000" + search_service.TOP},
                       "ix_hub_customer_user_id_c"),
    "email_prefix": ({"prefix": "Ann", "top": search_service.TOP}, "ix_hub_customer_email_lower"),
    "name_prefix": ({"prefix": "ann a", "top": search_service.TOP}, "ix_hub_customer_name_lower"),
    "field": ({"doc_a": json.dumps({"phone": "+44 1"}), "doc_b": json.dumps({"phone": "+441"})},
              "ix_hub_customer_fields_path"),
    "all": ({}, "uq_hub_customer_env_user"),
}


@pytest.fixture
async def many(hub: Any, hub_env: Any) -> None:
    for start in range(0, 2000, 500):
        await customer_service.upsert_customers(hub, "acme", [
            {"userId": f"cust-{n:05}", "fields": {"name": f"Ann {n}", "email": f"ann{n}@example.com",
                                                  "phone": f"+44{n:08}"}}
            for n in range(start, start + 500)])


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_every_search_statement_uses_an_index(hub, many, plan_mode):
    built = search_service.statements("postgresql")
    assert set(built) == set(PARAMS)
    conn = await asyncpg.connect(hub.db.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("ANALYZE hub_customer")
        await conn.execute("SET enable_seqscan = off")
        await conn.execute(f"SET plan_cache_mode = {plan_mode}")
        for name, (params, index) in PARAMS.items():
            sql, names, *_ = hub.db._compile(built[name])
            values = {"env": "acme", "limit": 51, "offset": 0, **params}
            prepared = await conn.prepare(sql)
            plan = json.dumps(await prepared.explain(*[values[n] for n in names]))
            assert "Seq Scan" not in plan, (name, plan)
            assert f'"Index Name": "{index}"' in plan, (name, plan)
    finally:
        await conn.close()


async def test_searches_on_postgresql_find_what_the_indexes_hold(hub, many):
    fields = await search_service.searchable_fields(hub, "acme")
    for typed, expected in (("cust-01999", "cust-01999"), ("ANN1234@EXAMPLE.COM", "cust-01234"),
                            ("phone:+44 0000 0042", "cust-00042")):
        result = await search_service.search(hub, "acme", search_service.read(typed, "any", fields), fields)
        assert [r["user_id"] for r in result.rows][:1] == [expected], typed
