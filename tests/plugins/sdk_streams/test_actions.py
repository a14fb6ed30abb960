"""Actions an end user takes on their cards, through the core card service."""

from __future__ import annotations

from datetime import timedelta

from tests.engine.conftest import CARD_FLOW, FORM_FLOW
from tests.plugins.sdk_streams.conftest import bearer


async def one_card(flows, user_id: str, flow_id: str = "pay") -> dict:
    if flow_id == "pay":
        await flows.publish("pay", FORM_FLOW)
        await flows.start("pay", target={"usersById": [user_id]}, payload={"variables": {"amount": 12}})
    else:
        await flows.publish(flow_id, CARD_FLOW)
        await flows.start(flow_id, target={"usersById": [user_id]})
    await flows.run_jobs()
    [card] = await flows.cards(userId=user_id)
    return card


def action_url(env: str, card: dict, action: str) -> str:
    return f"/v1/{env}/sdk/cards/{card['cardInstanceId']}/{action}"


async def test_submitting_a_form_completes_the_card_and_the_flow_goes_on(
    flows, hub_client, hub_env, sdk_signer
):
    card = await one_card(flows, "ann")
    headers = bearer(sdk_signer, "ann")
    done = await hub_client.post(
        action_url(hub_env.id, card, "submit"), headers=headers, json={"values": {"mine": True}}
    )
    assert done.status_code == 200, done.text
    assert done.json()["card"]["status"] == "completed" and done.json()["card"]["values"] == {"mine": True}
    assert "userId" not in done.json()["card"]
    await flows.run_jobs()
    assert {c["templateId"] for c in await flows.cards(userId="ann")} == {"ask", "thanks"}
    [event] = await flows.events(userId="ann", type="card-completed")
    assert event["eventContext"]["actionSource"] == "user"
    assert event["properties"]["submittedValues"] == {"mine": True}


async def test_invalid_values_are_422_naming_the_input_and_a_closed_card_is_409(
    flows, hub_client, hub_env, sdk_signer
):
    card = await one_card(flows, "bob")
    headers, url = bearer(sdk_signer, "bob"), action_url(hub_env.id, card, "submit")
    bad = await hub_client.post(url, headers=headers, json={"values": {"mine": "yes"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "values.mine"
    not_object = await hub_client.post(url, headers=headers, json={"values": [1]})
    assert not_object.status_code == 422 and not_object.json()["errors"][0]["field"] == "values"
    assert (await hub_client.post(url, headers=headers, json={"values": {"mine": False}})).status_code == 200
    again = await hub_client.post(url, headers=headers, json={"values": {"mine": True}})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    dismissed = await hub_client.post(action_url(hub_env.id, card, "dismiss"), headers=headers)
    assert dismissed.status_code == 409


async def test_dismiss_records_who_did_it(flows, hub_client, hub_env, sdk_signer):
    card = await one_card(flows, "cat", "welcome")
    response = await hub_client.post(
        action_url(hub_env.id, card, "dismiss"), headers=bearer(sdk_signer, "cat")
    )
    assert response.status_code == 200 and response.json()["card"]["status"] == "dismissed"
    [event] = await flows.events(userId="cat", type="card-dismissed")
    assert event["eventContext"]["actionSource"] == "user"


async def test_snooze_needs_a_future_time(flows, hub_client, hub_env, sdk_signer, clock):
    card = await one_card(flows, "dan", "welcome")
    headers, url = bearer(sdk_signer, "dan"), action_url(hub_env.id, card, "snooze")
    past = await hub_client.post(url, headers=headers, json={"until": "2001-01-01T00:00:00Z"})
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "until"
    naive = await hub_client.post(url, headers=headers, json={"until": "2999-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "until"
    missing = await hub_client.post(url, headers=headers, json={})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "until"
    until = (clock.current + timedelta(days=1)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    snoozed = await hub_client.post(url, headers=headers, json={"until": until})
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["card"]["status"] == "snoozed" and snoozed.json()["card"]["snoozedUntil"] == until


async def test_votes_record_events_with_the_message_and_leave_the_card_as_it_is(
    flows, hub_client, hub_env, sdk_signer
):
    card = await one_card(flows, "eve", "welcome")
    headers, url = bearer(sdk_signer, "eve"), action_url(hub_env.id, card, "vote")
    up = await hub_client.post(url, headers=headers, json={"direction": "up"})
    assert up.status_code == 200 and up.json()["card"]["status"] == "active"
    down = await hub_client.post(url, headers=headers, json={"direction": "down", "message": "not for me"})
    assert down.status_code == 200
    [voted_down] = await flows.events(userId="eve", type="card-voted-down")
    assert voted_down["properties"] == {"message": "not for me"}
    assert voted_down["eventContext"]["actionSource"] == "user"
    assert len(await flows.events(userId="eve", type="card-voted-up")) == 1
    sideways = await hub_client.post(url, headers=headers, json={"direction": "sideways"})
    assert sideways.status_code == 422 and sideways.json()["errors"][0]["field"] == "direction"
    await hub_client.post(action_url(hub_env.id, card, "dismiss"), headers=headers)
    closed = await hub_client.post(url, headers=headers, json={"direction": "up"})
    assert closed.status_code == 409
