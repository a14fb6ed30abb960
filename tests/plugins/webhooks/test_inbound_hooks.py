"""POST /hooks/{token}: the example event end to end, mapping errors, bodies, idempotency."""

import asyncio
import json

import pytest
from sqlalchemy import func, select

from hub.db import tables
from tests.plugins.webhooks.conftest import REPO

EVENT = json.loads((REPO / "examples/webhooks/transaction_flagged.json").read_text())
TRIGGER = json.loads((REPO / "examples/webhooks/transaction_flagged.trigger.json").read_text())


async def invocations(hub):
    async with hub.db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(tables.invocation))).scalar_one()


@pytest.fixture
async def example(inbound):
    await inbound.publish()
    return await inbound.create(**TRIGGER)


def problem(response, status, field):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in response.json()["errors"]]
    assert field in fields, response.json()
    return response.json()


async def test_the_transaction_flagged_example_starts_the_fraud_alert_and_sends_its_card(
    inbound, example, hub, hub_client, hub_env, run_jobs
):
    response = await inbound.hook(example, EVENT, sign="hub")
    assert response.status_code == 202, response.text
    [started] = response.json()["flows"]
    assert started["created"] is True and started["source"] == "webhook"
    assert started["flowInvocationId"].startswith(example["id"] + ":")
    await run_jobs()
    cards = (
        await hub_client.get(
            f"/v1/{hub_env.id}/cards", headers=hub_env.headers(), params={"userId": "cust-100234"}
        )
    ).json()["cards"]
    [card] = cards
    assert card["templateId"] == "fraud-check" and card["status"] == "active"
    assert card["flowInvocationId"] == started["flowInvocationId"]
    text = card["content"]["elements"][1]["text"]
    assert text == ("A payment of $1,249.00 at ElectroMart Online was made with your card ending 4821.")
    events = (
        await hub_client.get(
            f"/v1/{hub_env.id}/analytics/events",
            headers=hub_env.headers(),
            params={"userId": "cust-100234", "type": "card-published"},
        )
    ).json()
    metadata = events["events"][0]["platformContext"]["metadata"]
    assert metadata == {
        "source": "core-banking",
        "eventType": "transaction.flagged",
        "riskScore": 0.91,
        "riskRules": ["velocity", "new-merchant"],
    }


async def test_the_same_event_twice_starts_one_invocation(inbound, example, hub, run_jobs):
    first = await inbound.hook(example, EVENT, sign="hub")
    again = await inbound.hook(example, EVENT, sign="standard")
    assert first.status_code == again.status_code == 202
    assert first.json()["flows"][0]["created"] and not again.json()["flows"][0]["created"]
    assert first.json()["flows"][0]["flowInvocationId"] == again.json()["flows"][0]["flowInvocationId"]
    assert await invocations(hub) == 1


async def test_the_same_event_sent_concurrently_starts_one_invocation(
    inbound, example, hub, hub_client, hub_env, run_jobs
):
    responses = await asyncio.gather(
        *[
            inbound.hook(example, EVENT, sign="standard", headers={"webhook-id": f"attempt-{i}"})
            for i in range(8)
        ]
    )
    assert [r.status_code for r in responses] == [202] * 8, [r.text for r in responses]
    assert sum(r.json()["flows"][0]["created"] for r in responses) == 1
    assert len({r.json()["flows"][0]["flowInvocationId"] for r in responses}) == 1
    assert await invocations(hub) == 1
    await run_jobs()
    cards = (
        await hub_client.get(
            f"/v1/{hub_env.id}/cards", headers=hub_env.headers(), params={"userId": "cust-100234"}
        )
    ).json()["cards"]
    assert len(cards) == 1


async def test_another_event_starts_another_invocation(inbound, example, hub):
    other = {**EVENT, "eventId": "evt_other"}
    assert (await inbound.hook(example, EVENT, sign="hub")).status_code == 202
    assert (await inbound.hook(example, other, sign="hub")).status_code == 202
    assert await invocations(hub) == 2


async def test_a_field_the_mapping_needs_is_named_when_missing(inbound, example, hub):
    event = json.loads(json.dumps(EVENT))
    del event["data"]["transaction"]["merchant"]
    body = problem(await inbound.hook(example, event, sign="hub"), 422, "data.transaction.merchant")
    reason = next(e["reason"] for e in body["errors"] if e["field"] == "data.transaction.merchant")
    assert "not found" in reason and "variables.merchant" in reason
    assert await invocations(hub) == 0


async def test_a_value_of_the_wrong_type_for_the_flow_is_named_by_its_body_path(inbound, example):
    event = json.loads(json.dumps(EVENT))
    event["data"]["transaction"]["card"]["last4"] = 4821
    body = problem(await inbound.hook(example, event, sign="hub"), 422, "data.transaction.card.last4")
    assert "variables.cardLast4" in body["errors"][0]["reason"]


async def test_a_path_through_a_value_that_is_not_an_object_says_so(inbound, example):
    event = {**EVENT, "data": "flagged"}
    body = problem(await inbound.hook(example, event, sign="hub"), 422, "data")
    assert "is a string" in body["errors"][0]["reason"]


async def test_a_bad_user_id_is_refused_naming_its_path(inbound, example):
    event = json.loads(json.dumps(EVENT))
    event["data"]["customer"]["id"] = "a/b"
    problem(await inbound.hook(example, event, sign="hub"), 422, "data.customer.id")


async def test_malformed_json_is_a_400_problem(inbound, example):
    problem(await inbound.hook(example, b'{"eventId": ', sign="hub"), 400, "body")


async def test_an_empty_body_is_a_400_problem(inbound, example):
    problem(await inbound.hook(example, b"", sign="hub"), 400, "body")


async def test_a_body_that_is_not_json_is_a_415_problem(inbound, example):
    response = await inbound.hook(example, b"<event/>", headers={"Content-Type": "application/xml"})
    problem(response, 415, "header.content-type")


async def test_an_oversized_body_is_a_413_problem(monkeypatch, inbound_small_limit, inbound, hub):
    await inbound.publish()
    trigger = await inbound.create(mapping={"userId": "$.user"})
    response = await inbound.hook(trigger, {"user": "u1", "padding": "x" * 600})
    body = problem(response, 413, "body")
    assert "HUB_WEBHOOKS_INBOUND_MAX_BODY_BYTES" in body["detail"]
    assert (await inbound.hook(trigger, {"user": "u1"})).status_code != 413


async def test_an_oversized_body_without_a_length_is_cut_off_at_the_limit(inbound_small_limit, inbound,
                                                                          hub_client, hub):
    await inbound.publish()
    trigger = await inbound.create(mapping={"userId": "$.user"})

    async def chunks():
        yield b'{"user": "u1", "padding": "'
        for _ in range(4):
            yield b"x" * 200
        yield b'"}'

    path = "/" + trigger["url"].split("/", 3)[3]
    response = await hub_client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    problem(response, 413, "body")
    assert await invocations(hub) == 0


@pytest.fixture
def inbound_small_limit(monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOKS_INBOUND_MAX_BODY_BYTES", "512")


async def test_an_unknown_token_is_a_404_problem(hub_client):
    response = await hub_client.post("/hooks/" + "x" * 43, json={})
    problem(response, 404, "path.token")


async def test_a_deleted_trigger_answers_404(inbound, example, hub_client, hub_env):
    deleted = await hub_client.delete(f"/v1/{hub_env.id}/triggers/{example['id']}", headers=hub_env.headers())
    assert deleted.status_code == 204
    problem(await inbound.hook(example, EVENT, sign="hub"), 404, "path.token")


async def test_the_flow_must_allow_webhook_triggers(inbound, hub):
    definition = {**json.loads((REPO / "examples/flows/fraud_alert.json").read_text())}
    definition["triggers"] = {**definition["triggers"], "webhook": False}
    await inbound.publish("no-hooks", definition)
    trigger = await inbound.create(flowConfigId="no-hooks", mapping=TRIGGER["mapping"])
    problem(await inbound.hook(trigger, EVENT), 409, "flowConfigId")
    assert await invocations(hub) == 0


async def test_without_a_mapping_the_body_is_a_start_request(inbound, hub):
    await inbound.publish()
    trigger = await inbound.create()
    variables = {"amount": "$5", "merchant": "Cafe", "cardLast4": "1234", "paymentId": "p1"}
    start = {"target": {"usersById": ["ana", "bo"]}, "payload": {"variables": variables}}
    first = await inbound.hook(trigger, start, headers={"Idempotency-Key": "k-1"})
    again = await inbound.hook(trigger, start, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and again.status_code == 202, first.text
    assert not again.json()["flows"][0]["created"]
    both = await inbound.hook(trigger, {"flows": [start, start]})
    assert both.status_code == 202 and len(both.json()["flows"]) == 2
    assert await invocations(hub) == 3
    bad = await inbound.hook(trigger, {"target": {"usersById": ["ana"]}, "payload": {"variables": {}}})
    problem(bad, 422, "payload.variables.amount")


async def test_user_ids_from_an_array_start_one_invocation_for_all(
    inbound, hub, hub_client, hub_env, run_jobs
):
    await inbound.publish()
    mapping = {**TRIGGER["mapping"], "userIds": "$.data.holders[*].id"}
    del mapping["userId"]
    trigger = await inbound.create(mapping=mapping)
    event = json.loads(json.dumps(EVENT))
    event["data"]["holders"] = [{"id": "h1"}, {"id": 2}, {"id": "h1"}]
    response = await inbound.hook(trigger, event)
    assert response.status_code == 202, response.text
    assert response.json()["flows"][0]["target"] == {"usersById": ["h1", "2"]}
    event["data"]["holders"] = [{"id": "h1"}, {"name": "no id"}]
    problem(await inbound.hook(trigger, event), 422, "data.holders[1].id")


async def test_more_user_ids_than_allowed_are_refused(monkeypatch, inbound_max_two_users, inbound):
    await inbound.publish()
    trigger = await inbound.create(
        mapping={
            "userIds": "$.users",
            "variables": {k: {"const": "x"} for k in ("amount", "merchant", "cardLast4", "paymentId")},
        }
    )
    ok = await inbound.hook(trigger, {"users": ["a", "b"]})
    assert ok.status_code == 202, ok.text
    body = problem(await inbound.hook(trigger, {"users": ["a", "b", "c"]}), 422, "users")
    assert "HUB_WEBHOOKS_INBOUND_MAX_USERS" in body["errors"][0]["reason"]


@pytest.fixture
def inbound_max_two_users(monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOKS_INBOUND_MAX_USERS", "2")
