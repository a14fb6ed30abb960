"""A user can never read or act on another user's card, nor anything of another environment."""

from __future__ import annotations

import base64
import json

import pytest

from hub.testing import make_environment
from hub_plugins.sdk_streams.testing import Signer, make_signer, new_private_key
from tests.engine.conftest import CARD_FLOW, FORM_FLOW
from tests.plugins.sdk_streams.conftest import bearer

ACTIONS = {
    "submit": {"values": {"mine": True}},
    "dismiss": None,
    "snooze": {"until": "2999-01-01T00:00:00Z"},
    "vote": {"direction": "down", "message": "x"},
}


async def victims_card(flows) -> dict:
    await flows.publish("pay", FORM_FLOW)
    await flows.start("pay", target={"usersById": ["victim"]}, payload={"variables": {"amount": 5}})
    await flows.run_jobs()
    [card] = await flows.cards(userId="victim")
    return card


async def test_another_users_card_is_404_for_every_action_and_never_changes(
    flows, hub_client, hub_env, sdk_signer
):
    card = await victims_card(flows)
    headers = bearer(sdk_signer, "attacker")
    base = f"/v1/{hub_env.id}/sdk/cards/{card['cardInstanceId']}"
    for action, body in ACTIONS.items():
        response = await hub_client.post(f"{base}/{action}", headers=headers, json=body)
        assert response.status_code == 404, (action, response.text)
        assert response.json()["errors"][0]["field"] == "path.cardInstanceId"
    unknown = await hub_client.post(f"/v1/{hub_env.id}/sdk/cards/no-such-card/dismiss", headers=headers)
    assert (
        unknown.json()["detail"].replace("no-such-card", card["cardInstanceId"])
        == (await hub_client.post(f"{base}/dismiss", headers=headers)).json()["detail"]
    )
    feed = await hub_client.get(f"/v1/{hub_env.id}/sdk/streams/default/cards", headers=headers)
    assert feed.json()["cards"] == []
    displayed = await hub_client.post(
        f"/v1/{hub_env.id}/sdk/events",
        headers=headers,
        json={
            "events": [
                {
                    "analyticsEvent": "card-displayed",
                    "cardContext": {"cardInstanceId": card["cardInstanceId"]},
                }
            ]
        },
    )
    assert displayed.status_code == 422
    [after] = await flows.cards(userId="victim")
    assert after["status"] == "active" and after["values"] is None
    assert await flows.events(userId="attacker") == []


async def test_another_users_device_cannot_be_removed(hub_client, hub_env, sdk_signer):
    owner = bearer(sdk_signer, "owner")
    device = (
        await hub_client.post(
            f"/v1/{hub_env.id}/sdk/devices", headers=owner, json={"platform": "web", "token": "tok"}
        )
    ).json()
    stolen = await hub_client.delete(
        f"/v1/{hub_env.id}/sdk/devices/{device['deviceId']}", headers=bearer(sdk_signer, "thief")
    )
    assert stolen.status_code == 404
    assert (
        await hub_client.get(f"/v1/{hub_env.id}/sdk/devices", headers=bearer(sdk_signer, "thief"))
    ).json()["devices"] == []
    assert len((await hub_client.get(f"/v1/{hub_env.id}/sdk/devices", headers=owner)).json()["devices"]) == 1


async def test_a_token_of_another_environment_is_refused_here(flows, hub, hub_client, hub_env, sdk_signer):
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["shared-id"]})
    await flows.run_jobs()
    other = await make_environment(hub, "globex")
    their_signer = await make_signer(hub, other.id)  # same issuer and audience, another key
    token = {"Authorization": f"Bearer {their_signer.token('shared-id')}"}
    here = await hub_client.get(f"/v1/{hub_env.id}/sdk/streams/default/cards", headers=token)
    assert here.status_code == 401 and "signature matches no SDK key" in here.json()["detail"]
    [card] = await flows.cards(userId="shared-id")
    action = await hub_client.post(
        f"/v1/{hub_env.id}/sdk/cards/{card['cardInstanceId']}/dismiss", headers=token
    )
    assert action.status_code == 401
    # and with its own environment's token, the same user id sees nothing of acme's
    there = await hub_client.get(f"/v1/{other.id}/sdk/streams/default/cards", headers=token)
    assert there.status_code == 200 and there.json()["cards"] == []
    crossed = await hub_client.post(
        f"/v1/{other.id}/sdk/cards/{card['cardInstanceId']}/dismiss", headers=token
    )
    assert crossed.status_code == 404


async def test_an_unknown_environment_is_401(hub_client, sdk_signer):
    response = await hub_client.get("/v1/nowhere/sdk/streams/default/cards", headers=bearer(sdk_signer, "u"))
    assert response.status_code == 401


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "case",
    [
        "unregistered key",
        "expired",
        "wrong audience",
        "wrong issuer",
        "alg none",
        "alg HS256",
        "no token",
        "basic auth",
    ],
)
async def test_bad_tokens_are_401_on_every_sdk_route(hub_client, hub_env, sdk_signer, case):
    rogue = Signer(hub_env.id, "ES256", sdk_signer.issuer, sdk_signer.audience, new_private_key("ES256"), "")
    claims = {"sub": "u1", "iss": sdk_signer.issuer, "aud": sdk_signer.audience, "exp": 4_000_000_000}
    header = {
        "unregistered key": f"Bearer {rogue.token('u1')}",
        "expired": f"Bearer {sdk_signer.token('u1', expires_in=-3600)}",
        "wrong audience": f"Bearer {sdk_signer.token('u1', aud='another-app')}",
        "wrong issuer": f"Bearer {sdk_signer.token('u1', iss='https://evil.example')}",
        "alg none": f"Bearer {_b64({'alg': 'none'})}.{_b64(claims)}.",
        "alg HS256": f"Bearer {_b64({'alg': 'HS256'})}.{_b64(claims)}.c2lnbmF0dXJl",
        "no token": "",
        "basic auth": "Basic dTE6cGFzc3dvcmQ=",
    }[case]
    headers = {"Authorization": header} if header else {}
    env = hub_env.id
    for method, path in (
        ("GET", f"/v1/{env}/sdk/streams/default/cards"),
        ("POST", f"/v1/{env}/sdk/cards/any/dismiss"),
        ("POST", f"/v1/{env}/sdk/events"),
        ("GET", f"/v1/{env}/sdk/devices"),
        ("GET", f"/v1/{env}/sdk/preferences"),
    ):
        response = await hub_client.request(
            method, path, headers=headers, json={"events": []} if path.endswith("events") else None
        )
        assert response.status_code == 401, (case, path, response.text)
        assert response.headers["www-authenticate"] == 'Bearer realm="hub-sdk"'


async def test_the_token_is_checked_before_the_body_is_read(hub_client, hub_env):
    response = await hub_client.post(
        f"/v1/{hub_env.id}/sdk/devices", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
