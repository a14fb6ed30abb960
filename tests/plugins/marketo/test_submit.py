"""``submitAsyncAction``: the key first, then the batch checked field by field, stored durably,
answered 201 quickly; a repeated call starts nothing new."""

import copy
import json

import msgspec
import pytest
from sqlalchemy import func, select

from hub import queue
from hub.db import tables
from hub.testing import make_environment
from hub_plugins.marketo.tables import batch as batch_table
from tests.plugins.marketo.conftest import WELCOME_FLOW, Marketo, assert_problem, leads, sample


async def _count(hub, table) -> int:
    async with hub.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar())


async def test_the_sample_invocation_is_accepted_and_stored_with_its_job(ready, fake, hub):
    response = await ready.submit(sample(fake))
    assert response.status_code == 201, response.text
    assert response.json()["leads"] == 1 and response.json()["duplicate"] is False
    assert await _count(hub, batch_table) == 1
    job_id = f"marketo:{ready.env.id}:{response.json()['batchId']}"
    assert job_id in await queue.known_jobs(hub.redis, [job_id])
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(batch_table))).mappings().one()
    assert row["token"] != sample(fake)["token"] and row["token"].startswith("v1.")  # sealed
    assert row["leads"][0]["user"] == "1000000" and row["leads"][0]["variables"] == {"offer": "10% off"}
    assert row["leads"][0]["metadata"]["marketo"]["campaignName"] == "mock"


async def test_the_key_is_checked_before_the_body(ready):
    for key in ("", "wrong-key-wrong-key-wrong"):
        response = await ready.call(
            "POST",
            "/submitAsyncAction",
            key=key,
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 401, "header.x-api-key")
    other = await ready.call(
        "POST", "/submitAsyncAction", key="x", content=b"<xml/>", headers={"content-type": "application/xml"}
    )
    assert_problem(other, 401, "header.x-api-key")


async def test_the_key_of_another_environment_is_refused(ready, fake, hub):
    other = Marketo(hub, ready.client, await make_environment(hub, "other"))
    await other.configure(status=201)
    assert_problem(await ready.submit(sample(fake), key=other.api_key), 401, "header.x-api-key")


def _without(body, *path):
    out = copy.deepcopy(body)
    target = out
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return out


def _with(body, value, *path):
    out = copy.deepcopy(body)
    target = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: _without(b, "callbackUrl"), "callbackUrl"),
        (lambda b: _with(b, "ftp://example.com/cb", "callbackUrl"), "callbackUrl"),
        (lambda b: _without(b, "campaignId"), "campaignId"),
        (lambda b: _with(b, "1001", "campaignId"), "campaignId"),
        (lambda b: _without(b, "token"), "token"),
        (lambda b: _with(b, "", "token"), "token"),
        (lambda b: _without(b, "apiCallBackKey"), "apiCallBackKey"),
        (lambda b: _without(b, "context", "subscription", "munchkinId"), "context.subscription.munchkinId"),
        (lambda b: _with(b, {"objectContext": {"id": 1}}, "objectData"), "objectData"),
        (lambda b: _with(b, [], "objectData"), "objectData"),
        (
            lambda b: _with(b, "1000000", "objectData", 0, "objectContext", "id"),
            "objectData[0].objectContext.id",
        ),
        (lambda b: _with(b, True, "objectData", 0, "objectContext", "id"), "objectData[0].objectContext.id"),
        (lambda b: _without(b, "objectData", 0, "objectContext"), "objectData[0].objectContext"),
        (lambda b: _with(b, "nope", "objectData", 0, "flowStepContext"), "objectData[0].flowStepContext"),
        (
            lambda b: _without(b, "objectData", 0, "flowStepContext", "flowConfigId"),
            "objectData[0].flowStepContext.flowConfigId",
        ),
        (
            lambda b: _with(b, "no-such-flow", "objectData", 0, "flowStepContext", "flowConfigId"),
            "objectData[0].flowStepContext.flowConfigId",
        ),
        (lambda b: [b], "body"),
    ],
)
async def test_a_malformed_batch_is_400_naming_the_field(ready, fake, hub, change, field):
    response = await ready.submit(change(sample(fake)))
    assert_problem(response, 400, field)
    assert await _count(hub, batch_table) == 0


async def test_malformed_json_and_other_media_types_are_refused(ready):
    bad = await ready.call(
        "POST", "/submitAsyncAction", content=b"{", headers={"content-type": "application/json"}
    )
    assert_problem(bad, 400, "body")
    xml = await ready.call(
        "POST", "/submitAsyncAction", content=b"<a/>", headers={"content-type": "text/xml"}
    )
    assert_problem(xml, 415, "header.content-type")


async def test_flows_marketo_may_not_start_are_named(ready, fake, hub):
    await ready.publish("api-only", WELCOME_FLOW | {"triggers": {"marketo": False}})
    await ready.client.post(
        f"/v1/{ready.env.id}/flows",
        headers=ready.env.headers(),
        json={"id": "draft-only", "definition": WELCOME_FLOW},
    )
    field = "objectData[1].flowStepContext.flowConfigId"
    for flow, reason in (("api-only", "does not allow Marketo"), ("draft-only", "no published version")):
        body = fake.invocation([{"id": 1}, {"id": 2}], "welcome")
        body["objectData"][1]["flowStepContext"]["flowConfigId"] = flow
        assert reason in assert_problem(await ready.submit(body), 400, field)["errors"][0]["reason"]
    await ready.configure(status=200, flows=["api-only"])
    refused = assert_problem(
        await ready.submit(fake.invocation([{"id": 1}], "welcome")),
        400,
        "objectData[0].flowStepContext.flowConfigId",
    )
    assert "not offered" in refused["detail"]


async def test_more_leads_than_one_call_may_hold_is_413(ready, fake, hub):
    response = await ready.submit(fake.invocation(leads(1001), "welcome"))
    body = assert_problem(response, 413, "objectData")
    assert "1000" in body["detail"]
    assert await _count(hub, batch_table) == 0


async def test_a_private_callback_url_is_refused_unless_allowed(ready, fake, hub):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    body = assert_problem(await ready.submit(sample(fake)), 400, "callbackUrl")
    assert "private" in body["detail"] and "HUB_ALLOW_PRIVATE_URLS" in body["detail"]


async def test_a_repeated_call_answers_201_and_starts_nothing_new(ready, fake, hub, run_jobs):
    body = fake.invocation(leads(5), "welcome")
    first = await ready.submit(body)
    again = await ready.submit(body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == {**first.json(), "duplicate": True}
    await run_jobs()
    late = await ready.submit(body)  # after the batch ran and called back
    assert late.status_code == 201 and late.json()["duplicate"] is True
    await run_jobs()
    assert await _count(hub, batch_table) == 1
    assert await _count(hub, tables.invocation) == 5
    assert len(fake.accepted) == 1
    other_batch = {**body, "batchid": "another-run"}
    assert (await ready.submit(other_batch)).json()["duplicate"] is False


async def test_a_thousand_leads_are_accepted_in_one_call(ready, fake, hub):
    # How fast: bench/marketo.py (the 201 for 1,000 leads, and the time to the callback).
    body = fake.invocation(
        [{"id": 5_000_000 + i, "email": f"l{i}@example.com", "firstName": "Ada" * 5} for i in range(1000)],
        "welcome",
        step={"offer": "one", "amount": "5"},
    )
    raw = json.dumps(body).encode()
    response = await ready.call(
        "POST", "/submitAsyncAction", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["leads"] == 1000
