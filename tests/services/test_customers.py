"""Customer use-cases (hub/services/customers.py) on a real database, below the HTTP layer."""

import asyncio

import msgspec
import pytest
from sqlalchemy import select

from hub.core.customers import ProfileError
from hub.db import tables
from hub.hookspecs import hookimpl
from hub.services import customers as service


class AsyncRecorder:
    """An ``async def`` hookimpl: Hub must await it."""

    def __init__(self):
        self.calls = []

    @hookimpl
    async def hub_customer_changed(self, customer, changes):
        await asyncio.sleep(0)
        self.calls.append((customer, changes))


@pytest.fixture
def recorder():
    return AsyncRecorder()


@pytest.fixture
def hub_plugins(recorder):
    return [recorder]


async def _tags(hub, user_id):
    return (await service.get_customer(hub, "acme", user_id)).tags


async def test_concurrent_updates_of_one_customer_lose_no_change(hub, hub_env):
    await service.define_field(hub, "acme", "score", "number")
    await service.upsert_customers(hub, "acme", [{"userId": "u1"}])
    results = await asyncio.gather(*(
        service.upsert_customers(hub, "acme", [{"userId": "u1", "addTags": [f"t{i}"]}])
        for i in range(8)))
    assert all(r["updated"] == 1 for r in results)
    assert sorted(await _tags(hub, "u1")) == [f"t{i}" for i in range(8)]
    page = await service.list_customers(hub, "acme", tags=[f"t{i}" for i in range(8)])
    assert [c.user_id for c in page["users"]] == ["u1"]


async def test_concurrent_batches_creating_overlapping_users_in_any_order_all_succeed(hub, hub_env):
    ids = [f"user{i:02}" for i in range(30)]
    batches = [[{"userId": u, "addTags": [f"b{n}"]} for u in order]
               for n, order in enumerate((ids, ids[::-1], ids[10:] + ids[:10]))]
    results = await asyncio.gather(*(service.upsert_customers(hub, "acme", b) for b in batches))
    assert sum(r["created"] for r in results) == 30
    assert sum(r["updated"] for r in results) == 60
    assert await service.count_customers(hub, "acme") == 30
    for user_id in (ids[0], ids[15], ids[29]):
        assert sorted(await _tags(hub, user_id)) == ["b0", "b1", "b2"]


async def test_ensure_customers_creates_the_missing_and_keeps_the_existing(hub, hub_env):
    await service.upsert_customers(hub, "acme", [{"userId": "known", "tags": ["keep"]}])
    async with hub.db.begin() as conn:
        row_ids = await service.ensure_customers(conn, "acme", ["known", "new", "new"])
    assert set(row_ids) == {"known", "new"}
    assert await _tags(hub, "known") == ["keep"]
    assert (await service.get_customer(hub, "acme", "new")).preferences["notificationsEnabled"]


async def test_define_field_says_whether_it_created_the_field(hub, hub_env):
    first, created = await service.define_field(hub, "acme", "plan", "text", "Plan", "The plan")
    assert created and first["label"] == "Plan"
    again, created = await service.define_field(hub, "acme", "plan", "text", "Other label")
    assert not created and again == first
    with pytest.raises(service.Conflict):
        await service.define_field(hub, "acme", "plan", "number")
    with pytest.raises(ProfileError) as error:
        await service.define_field(hub, "acme", "email", "text")
    assert error.value.issues[0].field == "name"


@pytest.mark.parametrize("last_id", [0, 1, 42, 2**63 - 1])
def test_cursors_round_trip(last_id):
    cursor = service.encode_cursor(last_id)
    assert "=" not in cursor
    assert service.decode_cursor(cursor) == last_id


@pytest.mark.parametrize("cursor", ["", "x", "YzE6", "YzE6LTE", "YzE6MS41", "YzE6wrI"])
def test_foreign_cursors_are_refused(cursor):
    # "c1:", "c1:-1", "c1:1.5" and "c1:²" (a digit to str.isdigit, not to the database).
    with pytest.raises(ValueError, match="not a cursor"):
        service.decode_cursor(cursor)


async def test_list_reports_every_bad_query_parameter(hub, hub_env):
    with pytest.raises(ProfileError) as error:
        await service.list_customers(hub, "acme", tags=["ok", "bad,tag"], cursor="nope")
    assert [i.field for i in error.value.issues] == ["query.tag", "query.cursor"]


async def test_announce_job_hands_over_the_profile_as_it_is_now(hub, hub_env, recorder, run_jobs):
    await service.upsert_customers(hub, "acme", [{"userId": "u1", "tags": ["a"]}])
    await service.upsert_customers(hub, "acme", [{"userId": "u1", "addTags": ["b"]}])
    assert await run_jobs() >= 2
    assert [c["tags"] for c, _ in recorder.calls] == [["a", "b"], ["a", "b"]]
    assert [ch["created"] for _, ch in recorder.calls] == [True, False]


async def test_deleted_customer_is_announced_without_a_recreated_profile(hub, hub_env, recorder,
                                                                         run_jobs):
    await service.upsert_customers(hub, "acme", [{"userId": "u1", "tags": ["old"]}])
    await run_jobs()
    recorder.calls.clear()
    await service.delete_customer(hub, "acme", "u1", erase=True)
    await service.upsert_customers(hub, "acme", [{"userId": "u1", "tags": ["new"]}])
    await run_jobs()
    erased = [c for c, ch in recorder.calls if ch["erased"]]
    assert erased == [{"userId": "u1", "environmentId": "acme"}]


async def test_erase_announces_even_without_a_plugin_in_this_process(hub_settings, hub_backends):
    from hub.app import Hub

    # No plugin in this process listens to hub_customer_changed (the built-in that does is off).
    settings = msgspec.structs.replace(hub_settings, disable_plugins=("hub_plugins.sdk_streams.hooks",))
    hub = Hub(settings)
    assert not hub.pm.hook.hub_customer_changed.get_hookimpls()
    await hub.start()
    try:
        from hub.testing import make_environment

        await make_environment(hub, "acme")
        await service.upsert_customers(hub, "acme", [{"userId": "u1"}, {"userId": "u2"}])
        async with hub.db.connect() as conn:
            assert (await conn.execute(select(tables.outbox))).all() == []
        await service.delete_customer(hub, "acme", "u1")
        await service.delete_customer(hub, "acme", "u2", erase=True)
        jobs = await hub.redis.queued_jobs()
        assert [job.args[1][0][0] for job in jobs] == ["u2"]
    finally:
        await hub.close()


async def test_get_and_delete_refuse_ids_no_customer_can_have(hub, hub_env):
    for user_id in ("", "a\x00b", "x" * 256):
        with pytest.raises(service.NotFound):
            await service.get_customer(hub, "acme", user_id)
        with pytest.raises(service.NotFound):
            await service.delete_customer(hub, "acme", user_id)
