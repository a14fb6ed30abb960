"""The query for invocations still waiting for their job reads the partial index of pending
invocations, not every invocation the table keeps (on both backends)."""

from datetime import timedelta

from sqlalchemy import insert, text

from hub.core.clock import now
from hub.db import tables
from hub.services.fanout import waiting_query


def invocation(n: int, status: str, at) -> dict:
    return {"environment_id": "acme", "id": f"inv-{n:05}", "flow_id": "f", "flow_version": 1,
            "source": "api", "test": False, "target": {"usersById": [f"u{n}"]}, "payload": {},
            "status": status, "targeted": 1, "started": 1 if status == "completed" else 0,
            "chunks_done": 0, "created_at": at, "updated_at": at}


async def test_waiting_invocations_are_found_through_the_pending_index(hub):
    start = now() - timedelta(hours=1)
    rows = [invocation(n, "completed", start + timedelta(milliseconds=n)) for n in range(5000)]
    rows += [invocation(5000 + n, "pending", start + timedelta(seconds=10 + n)) for n in range(3)]
    async with hub.db.begin() as conn:
        await conn.execute(insert(tables.invocation), rows)
    dialect = hub.db.dialect
    query = waiting_query(dialect, "acme", "inv-05001")
    async with hub.db.connect() as conn:
        found = [i for (i,) in await conn.execute(query)]
        assert found == ["inv-05000", "inv-05002"]  # oldest first, the caller's own left out
        await conn.execute(text("ANALYZE"))
        sql = str(query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
        plan = "\n".join(str(row[-1]) for row in await conn.execute(text(explain + sql)))
    assert "ix_hub_invocation_pending" in plan, plan
