"""Recording, announcing, querying and exporting analytics events, on the test database."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub.core.analytics import CSV_COLUMNS, AnalyticsError, build_event
from hub.db import tables
from hub.hookspecs import hookimpl
from hub.services import analytics as service
from hub.services.outbox import transaction
from hub.testing import make_environment

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    async def hub_analytics_event(self, event):
        self.events.append(event)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def hub_plugins(recorder):
    return [recorder]


def event(name="order-placed", user="ana", at=T0, flow=None, **kwargs):
    platform = {"flowConfigId": flow, "flowInvocationId": f"{flow}-inv", "flowInstanceId": f"{flow}-i"} \
        if flow else None
    return build_event(name, user_id=user, timestamp=at, platform=platform, **kwargs)


async def record(hub, env, events, **kwargs):
    async with transaction(hub) as tx:
        await service.record_events(tx, env, events, **kwargs)
    return events


async def all_pages(hub, env, limit, **filters):
    seen, cursor, pages = [], None, 0
    while True:
        page = await service.query_events(hub, env, cursor=cursor, limit=limit, **filters)
        seen += page["events"]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            return seen, pages


async def test_recorded_events_are_stored_with_their_ids_in_columns(hub, hub_env):
    [e] = await record(hub, hub_env.id, [event("card-published", flow="welcome",
                                               card={"cardInstanceId": "card-1"})])
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.analytics_event))).one()
    assert (row.id, row.environment_id, row.user_id, row.name) == (e["id"], "acme", "ana", "card-published")
    assert (row.flow_id, row.invocation_id, row.instance_id, row.card_id) == (
        "welcome", "welcome-inv", "welcome-i", "card-1")
    assert row.timestamp == T0 and row.body == e


async def test_recording_the_same_events_twice_stores_them_once(hub, hub_env):
    events = [event(), event(user="bo")]
    await record(hub, hub_env.id, events)
    await record(hub, hub_env.id, events)
    page = await service.query_events(hub, hub_env.id)
    assert sorted(e["id"] for e in page["events"]) == sorted(e["id"] for e in events)


async def test_plugins_hear_of_events_after_commit_when_the_worker_runs(hub, hub_env, recorder, run_jobs):
    events = [event(at=T0 + timedelta(seconds=i)) for i in range(3)]
    async with transaction(hub) as tx:
        await service.record_events(tx, hub_env.id, events)
        async with hub.db.connect() as other:  # not visible outside the transaction yet
            count = (await other.execute(select(func.count()).select_from(tables.analytics_event))).scalar()
    assert recorder.events == []
    assert await run_jobs() == 1  # one job for the batch
    assert [e["id"] for e in recorder.events] == [e["id"] for e in events]
    assert all(e["environmentId"] == "acme" and e["analyticsEvent"] == "order-placed"
               for e in recorder.events)
    assert {k: v for k, v in recorder.events[0].items() if k != "environmentId"} == events[0]
    assert count == 0


async def test_a_rolled_back_transaction_stores_and_announces_nothing(hub, hub_env, recorder, run_jobs):
    with pytest.raises(RuntimeError):
        async with transaction(hub) as tx:
            await service.record_events(tx, hub_env.id, [event()])
            raise RuntimeError("the change failed")
    assert await run_jobs() == 0
    assert recorder.events == []
    assert (await service.query_events(hub, hub_env.id))["events"] == []


async def test_without_announce_no_job_is_enqueued(hub, hub_env, recorder, run_jobs):
    await record(hub, hub_env.id, [event()], announce=False)
    assert await run_jobs() == 0 and recorder.events == []


async def test_the_announce_job_is_at_least_once_and_skips_erased_events(hub, hub_env, recorder):
    [a, b] = await record(hub, hub_env.id, [event(), event(user="bo")], announce=False)
    ctx = {"hub": hub}
    assert await service.announce_analytics_events(ctx, "acme", [a["id"], "gone", b["id"]]) == 2
    assert await service.announce_analytics_events(ctx, "acme", [a["id"]]) == 1
    assert await service.announce_analytics_events(ctx, "other", [a["id"]]) == 0
    assert [e["id"] for e in recorder.events] == [a["id"], b["id"], a["id"]]


async def test_query_filters_by_user_names_flow_and_time(hub, hub_env):
    env = hub_env.id
    await record(hub, env, [
        event("order-placed", "ana", T0),
        event("order-shipped", "ana", T0 + timedelta(minutes=1)),
        event("card-published", "ana", T0 + timedelta(minutes=2), flow="welcome"),
        event("order-placed", "bo", T0 + timedelta(minutes=3)),
        event("card-published", "bo", T0 + timedelta(minutes=4), flow="promo"),
    ])

    async def names(**filters):
        page = await service.query_events(hub, env, **filters)
        return [(e["endUserId"], e["analyticsEvent"]) for e in page["events"]]

    assert len(await names()) == 5
    assert await names(user_id="bo") == [("bo", "order-placed"), ("bo", "card-published")]
    assert await names(names=["order-placed", "order-shipped"]) == [
        ("ana", "order-placed"), ("ana", "order-shipped"), ("bo", "order-placed")]
    assert await names(flow_id="welcome") == [("ana", "card-published")]
    assert await names(start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3)) == [
        ("ana", "order-shipped"), ("ana", "card-published")]  # from inclusive, to exclusive
    assert await names(user_id="ana", names=["card-published"], flow_id="promo") == []


async def test_cursor_pages_visit_every_event_once_even_at_equal_timestamps(hub, hub_env):
    env = hub_env.id
    # three timestamps, many events at each: the cursor must break ties on the id
    events = [event(user=f"u{i}", at=T0 + timedelta(seconds=i % 3)) for i in range(50)]
    await record(hub, env, events)
    seen, pages = await all_pages(hub, env, 7)
    assert pages == 8 and len(seen) == 50
    assert sorted(e["id"] for e in seen) == sorted(e["id"] for e in events)
    keys = [(e["timestamp"], e["id"]) for e in seen]
    assert keys == sorted(keys)  # oldest first, ties by id
    filtered, _ = await all_pages(hub, env, 4, start=T0 + timedelta(seconds=1))
    assert len(filtered) == len([i for i in range(50) if i % 3])


async def test_a_page_that_ends_the_results_has_no_cursor(hub, hub_env):
    await record(hub, hub_env.id, [event(user=f"u{i}") for i in range(3)])
    assert (await service.query_events(hub, hub_env.id, limit=3))["nextCursor"] is None
    assert (await service.query_events(hub, hub_env.id, limit=2))["nextCursor"] is not None


@pytest.mark.parametrize("cursor", ["nonsense", "ZTF8eHx5", "", "é", "a" * 500])
async def test_a_cursor_not_from_the_api_is_an_error_naming_it(hub, hub_env, cursor):
    with pytest.raises(AnalyticsError) as caught:
        await service.query_events(hub, hub_env.id, cursor=cursor)
    assert [i.field for i in caught.value.issues] == ["query.cursor"]


async def test_an_empty_or_reversed_range_is_an_error_naming_to(hub, hub_env):
    with pytest.raises(AnalyticsError) as caught:
        await service.query_events(hub, hub_env.id, start=T0, end=T0)
    assert [i.field for i in caught.value.issues] == ["query.to"]
    with pytest.raises(AnalyticsError):
        service.export_events(hub, hub_env.id, start=T0, end=T0 - timedelta(1))
    with pytest.raises(AnalyticsError) as caught:
        service.export_events(hub, hub_env.id, fmt="xml")
    assert [i.field for i in caught.value.issues] == ["query.format"]


async def test_environments_see_only_their_own_events(hub, hub_env):
    await make_environment(hub, "other")
    await record(hub, "acme", [event(user="ana")])
    await record(hub, "other", [event(user="ana"), event(user="bo")])
    assert len((await service.query_events(hub, "acme"))["events"]) == 1
    assert len((await service.query_events(hub, "other", user_id="ana"))["events"]) == 1
    exported = b"".join([chunk async for chunk in service.export_events(hub, "acme")])
    assert len(exported.splitlines()) == 1


async def export_2500(hub, env):
    events = [event(user=f"u{i % 40}", at=T0 + timedelta(seconds=i // 2),
                    properties={"i": i, "text": 'comma, "quote"\nnewline'}) for i in range(2500)]
    await record(hub, env, events, announce=False)
    await record(hub, env, [event(at=T0 - timedelta(days=1)), event(at=T0 + timedelta(days=1))],
                 announce=False)
    return events


async def test_export_streams_ndjson_in_batches(hub, hub_env):
    events = await export_2500(hub, hub_env.id)
    chunks = [chunk async for chunk in service.export_events(
        hub, hub_env.id, start=T0, end=T0 + timedelta(hours=1), batch=1000)]
    assert len(chunks) == 3  # 1000 + 1000 + 500, never the whole range at once
    lines = b"".join(chunks).decode().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert sorted(e["id"] for e in parsed) == sorted(e["id"] for e in events)
    assert [(e["timestamp"], e["id"]) for e in parsed] == sorted((e["timestamp"], e["id"]) for e in parsed)
    by_id = {e["id"]: e for e in events}
    assert all(e == by_id[e["id"]] for e in parsed)


async def test_export_streams_csv_with_a_header_and_json_objects(hub, hub_env):
    events = await export_2500(hub, hub_env.id)
    chunks = [chunk async for chunk in service.export_events(
        hub, hub_env.id, start=T0, end=T0 + timedelta(hours=1), fmt="csv", batch=1000)]
    assert len(chunks) == 4  # the header, then three batches
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2501
    records = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    by_id = {e["id"]: e for e in events}
    assert set(by_id) == {r["id"] for r in records}
    for r in records[:50]:
        original = by_id[r["id"]]
        assert r["analyticsEvent"] == "order-placed" and r["endUserId"] == original["endUserId"]
        assert json.loads(r["properties"]) == original["properties"]
        assert json.loads(r["cardContext"]) == original["cardContext"]


async def test_an_export_of_nothing_is_empty_or_just_the_header(hub, hub_env):
    assert [c async for c in service.export_events(hub, hub_env.id)] == []
    assert b"".join([c async for c in service.export_events(hub, hub_env.id, fmt="csv")]).decode() \
        == ",".join(CSV_COLUMNS) + "\r\n"


async def test_an_export_of_exactly_one_batch_ends(hub, hub_env):
    await record(hub, hub_env.id, [event(user=f"u{i}") for i in range(10)], announce=False)
    chunks = [c async for c in service.export_events(hub, hub_env.id, batch=5)]
    assert [len(c.splitlines()) for c in chunks] == [5, 5]


async def test_custom_events_are_recorded_and_customers_created(hub, hub_env, recorder, run_jobs):
    result = await service.record_custom_events(hub, hub_env.id, [
        {"userId": "new-user", "name": "order-placed", "properties": {"total": 3}},
        {"userId": "new-user", "name": "card-published"},
        {"userId": "zed", "name": "signed-up", "timestamp": "2024-05-01T12:00:00+02:00"},
    ])
    assert (result["accepted"], result["failed"]) == (2, 1)
    assert [r["status"] for r in result["results"]] == ["accepted", "error", "accepted"]
    assert result["results"][1]["errors"][0]["field"] == "events[1].name"
    async with hub.db.connect() as conn:
        users = (await conn.execute(select(tables.customer.c.user_id).where(
            tables.customer.c.environment_id == "acme").order_by(tables.customer.c.user_id))).scalars().all()
    assert users == ["new-user", "zed"]
    page = await service.query_events(hub, hub_env.id)
    [signed_up, order] = page["events"]  # oldest first: zed's is dated 10:00Z
    assert signed_up["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert order["eventContext"]["actionSource"] == "customer" and order["properties"] == {"total": 3}
    assert order["id"] == result["results"][0]["id"]
    await run_jobs()
    assert sorted(e["analyticsEvent"] for e in recorder.events) == ["order-placed", "signed-up"]


async def test_a_batch_of_only_invalid_custom_events_writes_nothing(hub, hub_env, run_jobs):
    result = await service.record_custom_events(hub, hub_env.id, [{"name": "x"}, 3])
    assert (result["accepted"], result["failed"]) == (0, 2)
    assert result["results"][1] == {"index": 1, "userId": None, "status": "error",
                                    "errors": [{"field": "events[1]", "reason": "must be an object"}]}
    assert await run_jobs() == 0
