"""Signed triggers: good, bad, stale and replayed requests, both header schemes, secret rotation."""

import time

import pytest

from hub_plugins.webhooks import inbound_signing
from tests.plugins.webhooks.test_inbound_hooks import EVENT, TRIGGER, invocations, problem


@pytest.fixture
async def signed(inbound):
    await inbound.publish()
    return await inbound.create(**TRIGGER)


@pytest.mark.parametrize("scheme", ["hub", "standard"])
async def test_a_good_signature_is_accepted(inbound, signed, scheme):
    assert signed["secret"].startswith("whsec_")
    response = await inbound.hook(signed, EVENT, sign=scheme)
    assert response.status_code == 202, response.text


async def test_an_unsigned_request_to_a_signed_trigger_is_a_401(inbound, signed, hub):
    response = await inbound.hook(signed, EVENT)
    body = problem(response, 401, "header.webhook-signature")
    assert "required" in body["errors"][0]["reason"]
    assert await invocations(hub) == 0


@pytest.mark.parametrize(
    "scheme,field", [("hub", "header.hub-signature"), ("standard", "header.webhook-signature")]
)
async def test_a_signature_made_with_another_secret_is_a_401(inbound, signed, hub, scheme, field):
    response = await inbound.hook(signed, EVENT, sign=scheme, secret=inbound_signing.new_secret())
    body = problem(response, 401, field)
    assert "no signature matches" in body["errors"][0]["reason"]
    assert await invocations(hub) == 0


async def test_a_signature_of_another_body_is_a_401(inbound, signed, hub_client):
    raw = b'{"eventId": "x"}'
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Hub-Signature": inbound_signing.sign_hub(signed["secret"], b'{"eventId": "y"}', stamp),
    }
    path = "/" + signed["url"].split("/", 3)[3]
    problem(await hub_client.post(path, content=raw, headers=headers), 401, "header.hub-signature")


@pytest.mark.parametrize(
    "scheme,field", [("hub", "header.hub-signature"), ("standard", "header.webhook-timestamp")]
)
@pytest.mark.parametrize("offset", [-301, 301])
async def test_a_stale_or_future_timestamp_is_a_401(inbound, signed, hub, scheme, field, offset):
    response = await inbound.hook(signed, EVENT, sign=scheme, timestamp=int(time.time()) + offset)
    body = problem(response, 401, field)
    assert "stale" in body["errors"][0]["reason"]
    assert await invocations(hub) == 0


async def test_the_tolerance_is_a_setting(inbound_tolerance_ten, inbound, signed):
    stale = await inbound.hook(signed, EVENT, sign="hub", timestamp=int(time.time()) - 30)
    problem(stale, 401, "header.hub-signature")


@pytest.fixture
def inbound_tolerance_ten(monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOKS_INBOUND_SIGNATURE_TOLERANCE_SECONDS", "10")


@pytest.mark.parametrize(
    "scheme,field", [("hub", "header.hub-signature"), ("standard", "header.webhook-signature")]
)
async def test_a_replayed_request_is_a_401(inbound, signed, hub, scheme, field):
    stamp = int(time.time())
    headers = {"webhook-id": "msg-1"}
    first = await inbound.hook(signed, EVENT, sign=scheme, timestamp=stamp, headers=headers)
    assert first.status_code == 202, first.text
    replay = await inbound.hook(signed, EVENT, sign=scheme, timestamp=stamp, headers=headers)
    body = problem(replay, 401, field)
    assert "replayed" in body["errors"][0]["reason"]
    # A retry signed again (a new timestamp) is accepted and starts nothing new.
    retry = await inbound.hook(signed, EVENT, sign=scheme, timestamp=stamp + 1, headers=headers)
    assert retry.status_code == 202 and not retry.json()["flows"][0]["created"]
    assert await invocations(hub) == 1


async def test_a_request_refused_after_its_signature_check_can_be_sent_again(inbound, signed, hub):
    event = {**EVENT, "data": {}}
    stamp = int(time.time())
    first = await inbound.hook(signed, event, sign="hub", timestamp=stamp)
    assert first.status_code == 422
    again = await inbound.hook(signed, event, sign="hub", timestamp=stamp)
    assert again.status_code == 422, again.text  # not "replayed": the first one was not accepted


async def test_an_unsigned_trigger_ignores_signatures(inbound, hub):
    await inbound.publish()
    trigger = await inbound.create(**{**TRIGGER, "signed": False})
    assert (await inbound.hook(trigger, EVENT)).status_code == 202


async def test_a_rotated_secret_keeps_working_for_its_grace_period_only(inbound, signed, hub_client, hub_env):
    old = signed["secret"]
    rotated = await hub_client.post(
        f"/v1/{hub_env.id}/triggers/{signed['id']}/rotate",
        headers=hub_env.headers(),
        json={"token": False, "previousSecretValidSeconds": 60},
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert "url" not in new and new["secret"] != old and new["previousSecretExpiresAt"]
    assert (await inbound.hook(signed, {**EVENT, "eventId": "a"}, sign="hub", secret=old)).status_code == 202
    assert (
        await inbound.hook(signed, {**EVENT, "eventId": "b"}, sign="hub", secret=new["secret"])
    ).status_code == 202
    again = await hub_client.post(
        f"/v1/{hub_env.id}/triggers/{signed['id']}/rotate", headers=hub_env.headers(), json={"token": False}
    )
    newest = again.json()["secret"]
    refused = await inbound.hook(signed, {**EVENT, "eventId": "c"}, sign="hub", secret=new["secret"])
    problem(refused, 401, "header.hub-signature")
    assert (
        await inbound.hook(signed, {**EVENT, "eventId": "d"}, sign="hub", secret=newest)
    ).status_code == 202


async def test_secrets_are_stored_sealed_and_the_token_only_as_a_hash(inbound, signed, hub):
    from sqlalchemy import select

    from hub_plugins.webhooks.inbound_tables import trigger

    async with hub.db.connect() as conn:
        row = (await conn.execute(select(trigger))).mappings().one()
    token = signed["url"].rsplit("/", 1)[1]
    stored = " ".join(str(v) for v in row.values())
    assert token not in stored and signed["secret"] not in stored
    assert signed["secret"].removeprefix("whsec_") not in stored


async def test_secrets_sealed_under_another_hub_secret_key_answer_503_until_rotated(
    inbound, signed, hub, hub_client, hub_env
):
    hub._webhooks_inbound_sealer = inbound_signing.Sealer("another-hub-secret-key")
    response = await inbound.hook(signed, EVENT, sign="hub")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "another" not in response.text and "HUB_SECRET_KEY" not in response.text
    rotated = await hub_client.post(
        f"/v1/{hub_env.id}/triggers/{signed['id']}/rotate", headers=hub_env.headers(), json={"token": False}
    )
    assert (await inbound.hook(signed, EVENT, sign="hub", secret=rotated.json()["secret"])).status_code == 202
