"""The Analytics API: /v1/{env}/analytics/events, /analytics/export and /events, over HTTP."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from hub.core.analytics import CSV_COLUMNS, TOP_LEVEL_KEYS, build_event
from hub.hookspecs import hookimpl
from hub.services.analytics import record_events
from hub.services.outbox import transaction
from hub.testing import make_environment
from tests.api.test_customers import assert_problem

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def hub_analytics_event(self, event):
        self.events.append(event)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def hub_plugins(recorder):
    return [recorder]


async def seed(hub, env, events):
    async with transaction(hub) as tx:
        await record_events(tx, env, events, announce=False)
    return events


def event(name="order-placed", user="ana", at=T0, flow=None):
    platform = {"flowConfigId": flow} if flow else None
    return build_event(name, user_id=user, timestamp=at, platform=platform)


class Api:
    def __init__(self, client, env):
        self.client, self.env = client, env

    async def events(self, expect=200, headers=None, **params):
        response = await self.client.get(f"/v1/{self.env.id}/analytics/events", params=params,
                                         headers=headers or self.env.headers())
        assert response.status_code == expect, response.text
        return response

    async def export(self, expect=200, **params):
        response = await self.client.get(f"/v1/{self.env.id}/analytics/export", params=params,
                                         headers=self.env.headers())
        assert response.status_code == expect, response.text
        return response

    async def post(self, events, expect=200, headers=None):
        response = await self.client.post(f"/v1/{self.env.id}/events", json={"events": events},
                                          headers=headers or self.env.headers())
        assert response.status_code == expect, response.text
        return response


@pytest.fixture
def api(hub_client, hub_env):
    return Api(hub_client, hub_env)


# --- query ----------------------------------------------------------------------------------


async def test_query_returns_events_in_the_protocol_shape(api, hub, hub_env):
    [e] = await seed(hub, hub_env.id, [event("card-published", flow="welcome")])
    body = (await api.events()).json()
    assert set(body) == {"events", "nextCursor"} and body["nextCursor"] is None
    [got] = body["events"]
    assert tuple(got) == TOP_LEVEL_KEYS
    assert got == e


async def test_query_filters_by_user_type_flow_and_time(api, hub, hub_env):
    await seed(hub, hub_env.id, [
        event("order-placed", "ana", T0),
        event("order-shipped", "ana", T0 + timedelta(minutes=1)),
        event("card-published", "bo", T0 + timedelta(minutes=2), flow="welcome"),
        event("order-placed", "bo", T0 + timedelta(minutes=3)),
    ])

    async def names(**params):
        return [(e["endUserId"], e["analyticsEvent"]) for e in (await api.events(**params)).json()["events"]]

    assert await names(userId="bo") == [("bo", "card-published"), ("bo", "order-placed")]
    assert await names(type=["order-placed", "card-published"]) == [
        ("ana", "order-placed"), ("bo", "card-published"), ("bo", "order-placed")]
    assert await names(flowConfigId="welcome") == [("bo", "card-published")]
    assert await names(**{"from": "2024-05-01T14:01:00+02:00", "to": "2024-05-01T12:03:00Z"}) == [
        ("ana", "order-shipped"), ("bo", "card-published")]


async def test_cursor_pagination_has_no_gaps_or_repeats(api, hub, hub_env):
    events = await seed(hub, hub_env.id, [event(user=f"u{i}", at=T0 + timedelta(seconds=i % 4))
                                          for i in range(45)])
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        body = (await api.events(**params)).json()
        seen += body["events"]
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert len(seen) == 45 and {e["id"] for e in seen} == {e["id"] for e in events}


@pytest.mark.parametrize("params,field", [
    ({"from": "yesterday"}, "query.from"),
    ({"from": "2024-05-01T12:00:00"}, "query.from"),
    ({"to": "2024-13-01T00:00:00Z"}, "query.to"),
    ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "query.to"),
    ({"cursor": "not-a-cursor"}, "query.cursor"),
    ({"type": "Order_Placed"}, "query.type"),
    ({"limit": 0}, "query.limit"),
    ({"limit": 5000}, "query.limit"),
    ({"user": "ana"}, "query.user"),
    ({"userId": "a\x00b"}, "query.userId"),
    ({"userId": ""}, "query.userId"),
    ({"flowConfigId": "a\x00b"}, "query.flowConfigId"),
])
async def test_bad_query_parameters_are_422_naming_them(api, params, field):
    assert_problem(await api.events(expect=422, **params), 422, field)


# --- export ---------------------------------------------------------------------------------


async def seed_2500(hub, env):
    events = [event(user=f"u{i % 30}", at=T0 + timedelta(seconds=i)) for i in range(2500)]
    await seed(hub, env, events)
    await seed(hub, env, [event(at=T0 - timedelta(hours=1))])  # outside the range
    return events


async def test_export_ndjson_of_2500_events(api, hub, hub_env):
    events = await seed_2500(hub, hub_env.id)
    response = await api.export(format="ndjson", **{"from": "2024-05-01T12:00:00Z",
                                                   "to": "2024-05-02T00:00:00Z"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and 'filename="hub-analytics-acme-' in disposition
    assert disposition.endswith('.ndjson"')
    parsed = [json.loads(line) for line in response.text.splitlines()]
    assert parsed == events  # every event, oldest first, exactly as built


async def test_export_csv_of_2500_events(api, hub, hub_env):
    events = await seed_2500(hub, hub_env.id)
    response = await api.export(format="csv", **{"from": "2024-05-01T12:00:00Z"})
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    records = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [r["id"] for r in records] == [e["id"] for e in events]
    assert all(json.loads(r["eventContext"]) == e["eventContext"]
               for r, e in zip(records, events, strict=True))


async def test_export_defaults_to_ndjson_of_everything(api, hub, hub_env):
    await seed(hub, hub_env.id, [event(), event(at=T0 - timedelta(days=400))])
    assert len((await api.export()).text.splitlines()) == 2


@pytest.mark.parametrize("params,field", [
    ({"format": "xml"}, "query.format"),
    ({"from": "soon"}, "query.from"),
    ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "query.to"),
    ({"type": "x"}, "query.type"),
])
async def test_bad_export_parameters_are_422_naming_them(api, params, field):
    assert_problem(await api.export(expect=422, **params), 422, field)


# --- custom events --------------------------------------------------------------------------


async def test_custom_events_valid_items_saved_invalid_reported(api, hub_client, hub_env, recorder, run_jobs):
    response = await api.post([
        {"userId": "ana", "name": "order-placed", "properties": {"total": 12.5}},
        {"userId": "ana", "name": "Order Placed"},
        {"userId": "bo", "name": "card-completed"},
        {"userId": "bo", "name": "stream-displayed"},
        {"userId": "cy", "name": "signed-up", "timestamp": "2024-05-01T12:00:00Z", "extra": 1},
        {"name": "no-user"},
        {"userId": "new-customer", "name": "signed-up", "timestamp": "2024-05-01T12:00:00Z"},
    ])
    body = response.json()
    assert (body["accepted"], body["failed"]) == (2, 5)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "error", "error", "error", "error", "error", "accepted"]
    assert body["results"][1]["errors"][0]["field"] == "events[1].name"
    assert "Hub's own event names" in body["results"][2]["errors"][0]["reason"]
    assert body["results"][4]["errors"][0]["field"] == "events[4].extra"
    assert body["results"][5]["errors"][0]["field"] == "events[5].userId"
    assert body["results"][0]["userId"] == "ana" and body["results"][0]["id"]
    assert "id" not in body["results"][1]

    events = (await api.events()).json()["events"]
    assert [e["analyticsEvent"] for e in events] == ["signed-up", "order-placed"]
    order = events[1]
    assert order["id"] == body["results"][0]["id"] and order["properties"] == {"total": 12.5}
    assert order["eventContext"]["actionSource"] == "customer" and order["endUserId"] == "ana"
    profile = await hub_client.get(f"/v1/{hub_env.id}/users/new-customer", headers=hub_env.headers())
    assert profile.status_code == 200
    assert recorder.events == []
    await run_jobs()
    assert sorted(e["analyticsEvent"] for e in recorder.events) == ["order-placed", "signed-up"]


async def test_custom_events_batch_limits(api, hub):
    assert_problem(await api.post([], expect=422), 422, "events")
    too_many = [{"userId": "u", "name": "x"}] * (hub.settings.max_batch_size + 1)
    assert_problem(await api.post(too_many, expect=413), 413, "events")
    response = await api.client.post(f"/v1/{api.env.id}/events", json={"items": []},
                                     headers=api.env.headers())
    assert_problem(response, 422)


# --- permissions and tenants ----------------------------------------------------------------


async def test_a_users_only_token_gets_403_everywhere(api, hub_client, hub_env):
    headers = hub_env.headers(roles=["users"])
    for path in ("analytics/events", "analytics/export"):
        response = await hub_client.get(f"/v1/{hub_env.id}/{path}", headers=headers)
        assert_problem(response, 403)
    assert_problem(await api.post([{"userId": "u", "name": "x"}], expect=403, headers=headers), 403)
    assert (await hub_client.get(f"/v1/{hub_env.id}/analytics/events")).status_code == 401


async def test_the_analytics_role_reads_and_writes_and_read_only_reads(api, hub_env):
    await api.post([{"userId": "u", "name": "x"}], headers=hub_env.headers(roles=["analytics"]))
    await api.events(headers=hub_env.headers(roles=["analytics"]))
    await api.events(headers=hub_env.headers(roles=["read"]))
    await api.post([{"userId": "u", "name": "x"}], expect=403, headers=hub_env.headers(roles=["read"]))


async def test_environments_are_isolated(api, hub, hub_client, hub_env):
    other = await make_environment(hub, "other")
    await api.post([{"userId": "ana", "name": "order-placed"}])
    response = await hub_client.get("/v1/other/analytics/events", headers=other.headers())
    assert response.json()["events"] == []
    export = await hub_client.get("/v1/other/analytics/export", headers=other.headers())
    assert export.text == ""
    crossed = await hub_client.get("/v1/other/analytics/events", headers=hub_env.headers())
    assert_problem(crossed, 403)
