"""``bulk_insert``: the fan-out's write path (asyncpg directly on PostgreSQL) behaves like an INSERT."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hub.db import bulk_insert, tables

STAMP = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def timer(ref: str, payload):
    return {"environment_id": "acme", "kind": "card_expire", "ref_id": ref, "due_at": STAMP,
            "payload": payload, "created_at": STAMP}


async def stored(hub):
    t = tables.timer.c
    async with hub.db.connect() as conn:
        rows = await conn.execute(select(t.ref_id, t.payload, t.due_at).order_by(t.ref_id))
        return [tuple(r) for r in rows]


async def test_rows_are_stored_with_json_and_aware_datetimes_and_conflicts_skipped(hub):
    async with hub.db.begin() as conn:
        await bulk_insert(conn, tables.timer, [timer("a", {"x": [1, "é"]}), timer("b", {})],
                          ["kind", "ref_id", "due_at"])
        await bulk_insert(conn, tables.timer, [timer("a", {"x": "again"}), timer("c", {"n": None})],
                          ["kind", "ref_id", "due_at"])
    assert await stored(hub) == [("a", {"x": [1, "é"]}, STAMP), ("b", {}, STAMP), ("c", {"n": None}, STAMP)]


async def test_rows_join_the_callers_transaction_and_roll_back_with_it(hub):
    with pytest.raises(RuntimeError):
        async with hub.db.begin() as conn:
            await bulk_insert(conn, tables.timer, [timer("first", {})])  # the transaction's first statement
            raise RuntimeError("the change fails")
    assert await stored(hub) == []


async def test_an_empty_batch_does_nothing(hub):
    async with hub.db.begin() as conn:
        await bulk_insert(conn, tables.timer, [])
    assert await stored(hub) == []


async def test_a_duplicate_key_is_sqlalchemys_integrity_error_on_every_backend(hub):
    from sqlalchemy.exc import IntegrityError

    async with hub.db.begin() as conn:
        await bulk_insert(conn, tables.timer, [timer("dup", {})])
    with pytest.raises(IntegrityError):
        async with hub.db.begin() as conn:
            await bulk_insert(conn, tables.timer, [timer("dup", {})])
    assert len(await stored(hub)) == 1
