"""SDK analytics: batches of the SDK events, with their contexts, recorded as the user's."""

from __future__ import annotations

import uuid

from tests.engine.conftest import CARD_FLOW
from tests.plugins.sdk_streams.conftest import bearer

SDK_CONTEXT = {
    "platform": "Web",
    "sdkVersion": "1.0.0",
    "containerId": "default",
    "sdkTimezone": "Europe/Paris",
}
STREAM_CONTEXT = {
    "displayMode": "stream",
    "streamId": "default",
    "streamLengthVisible": 1,
    "cardPositionInStream": 0,
}


async def a_card(flows, user_id: str) -> dict:
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": [user_id]})
    await flows.run_jobs()
    [card] = await flows.cards(userId=user_id)
    return card


def events_url(env: str) -> str:
    return f"/v1/{env}/sdk/events"


async def test_sdk_events_are_recorded_with_their_contexts_and_the_card(
    flows, hub_client, hub_env, sdk_signer
):
    card = await a_card(flows, "ana")
    response = await hub_client.post(
        events_url(hub_env.id),
        headers=bearer(sdk_signer, "ana"),
        json={
            "events": [
                {
                    "analyticsEvent": "stream-displayed",
                    "sdkContext": SDK_CONTEXT,
                    "streamContext": STREAM_CONTEXT,
                },
                {
                    "analyticsEvent": "card-displayed",
                    "sdkContext": SDK_CONTEXT,
                    "streamContext": STREAM_CONTEXT,
                    "cardContext": {"cardInstanceId": card["cardInstanceId"], "cardViewState": "topview"},
                    "eventContext": {"userLocalTimestamp": "2026-11-23T23:00:00+01:00"},
                    "properties": {"source": "test"},
                },
            ]
        },
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2}
    [stream] = await flows.events(userId="ana", type="stream-displayed")
    assert stream["sdkContext"]["platform"] == "Web" and stream["sdkContext"]["sdkTimezone"] == "Europe/Paris"
    assert (
        stream["streamContext"]["displayMode"] == "stream"
        and stream["eventContext"]["actionSource"] == "user"
    )
    [displayed] = await flows.events(userId="ana", type="card-displayed")
    assert displayed["cardContext"]["cardInstanceId"] == card["cardInstanceId"]
    assert displayed["cardContext"]["cardTemplateId"] == "hello"
    assert displayed["cardContext"]["cardViewState"] == "topview"
    assert displayed["platformContext"]["flowConfigId"] == "welcome"
    assert displayed["eventContext"]["userLocalTimestamp"] == "2026-11-23T23:00:00+01:00"
    assert displayed["streamContext"]["cardPositionInStream"] == 0
    assert displayed["properties"] == {"source": "test"}


async def test_an_unknown_event_rejects_the_batch_naming_it(flows, hub_client, hub_env, sdk_signer):
    response = await hub_client.post(
        events_url(hub_env.id),
        headers=bearer(sdk_signer, "bo"),
        json={"events": [{"analyticsEvent": "stream-displayed"}, {"analyticsEvent": "card-published"}]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events[1].analyticsEvent"
    assert await flows.events(userId="bo") == []


async def test_contexts_are_checked_field_by_field(hub_client, hub_env, sdk_signer):
    response = await hub_client.post(
        events_url(hub_env.id),
        headers=bearer(sdk_signer, "cy"),
        json={
            "events": [
                {"analyticsEvent": "stream-displayed", "sdkContext": {"platform": "Amiga"}},
                {"analyticsEvent": "card-displayed"},
                {"analyticsEvent": "card-displayed", "cardContext": {"cardInstanceId": "x", "color": "red"}},
                {"analyticsEvent": "card-displayed", "cardInstanceId": "x"},
            ]
        },
    )
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert "events[0].sdkContext.platform" in fields
    assert "events[1].cardContext.cardInstanceId" in fields
    assert "events[2].cardContext.color" in fields
    assert "events[3].cardInstanceId" in fields


async def test_card_events_must_name_one_of_the_users_cards(flows, hub_client, hub_env, sdk_signer):
    card = await a_card(flows, "someone")
    response = await hub_client.post(
        events_url(hub_env.id),
        headers=bearer(sdk_signer, "dee"),
        json={
            "events": [
                {
                    "analyticsEvent": "card-displayed",
                    "cardContext": {"cardInstanceId": card["cardInstanceId"]},
                }
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "events[0].cardContext.cardInstanceId",
        "reason": "no such card",
    }


async def test_a_repeated_event_id_is_recorded_once(flows, hub_client, hub_env, sdk_signer):
    event = {"analyticsEvent": "sdk-initialized", "id": str(uuid.uuid4())}
    for _ in range(2):
        response = await hub_client.post(
            events_url(hub_env.id), headers=bearer(sdk_signer, "eli"), json={"events": [event]}
        )
        assert response.status_code == 202
    assert len(await flows.events(userId="eli", type="sdk-initialized")) == 1


async def test_batches_are_limited(hub_client, hub_env, sdk_signer):
    too_many = {"events": [{"analyticsEvent": "sdk-initialized"}] * 101}
    response = await hub_client.post(events_url(hub_env.id), headers=bearer(sdk_signer, "fa"), json=too_many)
    assert response.status_code == 413 and response.json()["errors"][0]["field"] == "events"
    empty = await hub_client.post(
        events_url(hub_env.id), headers=bearer(sdk_signer, "fa"), json={"events": []}
    )
    assert empty.status_code == 422
