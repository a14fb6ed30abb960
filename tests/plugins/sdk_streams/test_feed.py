"""The feed: the user's visible cards of a container, in order, with an ETag for cheap polls."""

from __future__ import annotations

from hub_plugins.sdk_streams.cards import SDK_CARD_FIELDS
from tests.engine.conftest import CARD_FLOW
from tests.plugins.sdk_streams.conftest import bearer


def feed_url(env: str, container: str = "default") -> str:
    return f"/v1/{env}/sdk/streams/{container}/cards"


async def send_card(flows, user_id: str, **card_options) -> None:
    await flows.start("welcome", target={"usersById": [user_id]}, payload={"cardOptions": card_options})
    await flows.run_jobs()


async def test_the_feed_lists_active_cards_by_priority_then_newest(
    flows, hub_client, hub_env, sdk_signer, clock
):
    await flows.publish("welcome", CARD_FLOW)
    await send_card(flows, "ana", priority=3)
    clock.advance(seconds=1)
    await send_card(flows, "ana", priority=9)
    clock.advance(seconds=1)
    await send_card(flows, "ana", priority=3)
    response = await hub_client.get(feed_url(hub_env.id), headers=bearer(sdk_signer, "ana"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["etag"] == f'"{body["version"]}"' and body["pollSeconds"] == 15
    cards = body["cards"]
    assert [c["priority"] for c in cards] == [9, 3, 3]
    assert cards[1]["publishedAt"] > cards[2]["publishedAt"]
    assert all(set(c) == set(SDK_CARD_FIELDS) for c in cards)
    assert cards[0]["content"]["elements"][0]["type"] == "headline"


async def test_an_unchanged_feed_answers_304_and_a_new_card_changes_the_etag(
    flows, hub_client, hub_env, sdk_signer
):
    await flows.publish("welcome", CARD_FLOW)
    await send_card(flows, "bo")
    headers = bearer(sdk_signer, "bo")
    first = await hub_client.get(feed_url(hub_env.id), headers=headers)
    etag = first.headers["etag"]
    unchanged = await hub_client.get(feed_url(hub_env.id), headers={**headers, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    weak = await hub_client.get(feed_url(hub_env.id), headers={**headers, "If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    await send_card(flows, "bo")
    changed = await hub_client.get(feed_url(hub_env.id), headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert len(changed.json()["cards"]) == 2


async def test_another_users_new_card_does_not_change_my_etag(flows, hub_client, hub_env, sdk_signer):
    await flows.publish("welcome", CARD_FLOW)
    headers = bearer(sdk_signer, "cy")
    etag = (await hub_client.get(feed_url(hub_env.id), headers=headers)).headers["etag"]
    await send_card(flows, "someone-else")
    again = await hub_client.get(feed_url(hub_env.id), headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304


async def test_cards_show_only_in_the_containers_they_target(flows, hub_client, hub_env, sdk_signer):
    await flows.publish("welcome", CARD_FLOW)
    created = await hub_client.post(
        f"/v1/{hub_env.id}/stream-containers",
        headers=hub_env.headers(),
        json={"id": "offers", "name": "Offers"},
    )
    assert created.status_code == 201
    await send_card(flows, "di", targetStreamIds=["offers"])
    headers = bearer(sdk_signer, "di")
    assert (await hub_client.get(feed_url(hub_env.id), headers=headers)).json()["cards"] == []
    [card] = (await hub_client.get(feed_url(hub_env.id, "offers"), headers=headers)).json()["cards"]
    assert card["targetStreamIds"] == ["offers"]


async def test_dismissed_and_snoozed_cards_leave_the_feed(flows, hub_client, hub_env, sdk_signer):
    await flows.publish("welcome", CARD_FLOW)
    await send_card(flows, "ed")
    await send_card(flows, "ed")
    headers = bearer(sdk_signer, "ed")
    first, second = (await hub_client.get(feed_url(hub_env.id), headers=headers)).json()["cards"]
    base = f"/v1/{hub_env.id}/sdk/cards"
    assert (
        await hub_client.post(f"{base}/{first['cardInstanceId']}/dismiss", headers=headers)
    ).status_code == 200
    snoozed = await hub_client.post(
        f"{base}/{second['cardInstanceId']}/snooze", headers=headers, json={"until": "2999-01-01T00:00:00Z"}
    )
    assert snoozed.status_code == 200, snoozed.text
    await flows.run_jobs()
    assert (await hub_client.get(feed_url(hub_env.id), headers=headers)).json()["cards"] == []


async def test_expired_but_not_yet_swept_cards_are_not_shown(flows, hub_client, hub_env, sdk_signer, clock):
    await flows.publish("welcome", CARD_FLOW)
    await send_card(flows, "fay", expiresInterval="PT1M")
    headers = bearer(sdk_signer, "fay", expires_in=3600)
    assert len((await hub_client.get(feed_url(hub_env.id), headers=headers)).json()["cards"]) == 1
    clock.advance(minutes=2)
    assert (await hub_client.get(feed_url(hub_env.id), headers=headers)).json()["cards"] == []


async def test_a_bad_container_id_names_the_path(hub_client, hub_env, sdk_signer):
    response = await hub_client.get(feed_url(hub_env.id, "not%20valid"), headers=bearer(sdk_signer, "u"))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "path.containerId"
