"""``PUT/GET/DELETE /v1/{env}/integrations/sfmc`` and ``.../rotate``."""

from __future__ import annotations

import pytest

from tests.plugins.salesforce_mc.conftest import SECRET

PATH = "/v1/acme/integrations/sfmc"


async def test_put_answers_the_activity_urls_and_the_defaults_never_the_secret(hub_client, hub_env, hub):
    response = await hub_client.put(PATH, headers=hub_env.headers(), json={"jwtSigningSecret": SECRET})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["activityUrl"].startswith("http://testserver/sfmc/")
    token = body["activityUrl"].rsplit("/", 1)[1]
    assert len(token) >= 32
    assert body["decisionUrl"] == body["activityUrl"] + "/split"
    assert (body["timeoutMs"], body["retryCount"], body["concurrentRequests"], body["userIdFrom"]) == (
        20_000, 0, 10, "keyValue")
    assert SECRET not in response.text
    got = await hub_client.get(PATH, headers=hub_env.headers(roles=["integrations"]))
    assert got.status_code == 200 and got.json()["activityUrl"] == body["activityUrl"]
    assert SECRET not in got.text
    async with hub.db.connect() as conn:
        from sqlalchemy import select

        from hub_plugins.salesforce_mc.tables import config
        stored = (await conn.execute(select(config.c.jwt_secret))).scalar_one()
    assert SECRET not in stored  # sealed at rest


async def test_fields_left_out_keep_their_value_and_the_url_stays(hub_client, hub_env):
    first = (await hub_client.put(PATH, headers=hub_env.headers(), json={"jwtSigningSecret": SECRET,
                                                                          "retryCount": 3})).json()
    second = await hub_client.put(PATH, headers=hub_env.headers(), json={"timeoutMs": 5000,
                                                                          "userIdFrom": "customerId"})
    assert second.status_code == 200, second.text
    body = second.json()
    assert (body["retryCount"], body["timeoutMs"], body["userIdFrom"]) == (3, 5000, "customerId")
    assert body["activityUrl"] == first["activityUrl"]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "jwtSigningSecret"),
    ({"jwtSigningSecret": "short"}, "jwtSigningSecret"),
    ({"jwtSigningSecret": SECRET, "timeoutMs": 999}, "timeoutMs"),
    ({"jwtSigningSecret": SECRET, "timeoutMs": 100_001}, "timeoutMs"),
    ({"jwtSigningSecret": SECRET, "retryCount": 6}, "retryCount"),
    ({"jwtSigningSecret": SECRET, "concurrentRequests": 0}, "concurrentRequests"),
    ({"jwtSigningSecret": SECRET, "concurrentRequests": 51}, "concurrentRequests"),
    ({"jwtSigningSecret": SECRET, "retryDelayMs": -1}, "retryDelayMs"),
    ({"jwtSigningSecret": SECRET, "userIdFrom": "not a name"}, "userIdFrom"),
])
async def test_invalid_settings_are_refused_naming_the_field(hub_client, hub_env, body, field):
    response = await hub_client.put(PATH, headers=hub_env.headers(), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_permissions_are_sfmc_read_and_write(hub_client, hub_env):
    assert (await hub_client.get(PATH)).status_code == 401
    refused = await hub_client.put(PATH, headers=hub_env.headers(roles=["read"]),
                                   json={"jwtSigningSecret": SECRET})
    assert refused.status_code == 403
    allowed = await hub_client.put(PATH, headers=hub_env.headers(roles=["integrations"]),
                                   json={"jwtSigningSecret": SECRET})
    assert allowed.status_code == 200
    assert (await hub_client.get(PATH, headers=hub_env.headers(roles=["read"]))).status_code == 200


async def test_rotate_gives_a_new_url_and_the_old_one_answers_404(journey, hub_client, hub_env):
    old = await journey.install()
    old_config = journey.path("config.json")
    assert (await hub_client.get(old_config)).status_code == 200
    rotated = await hub_client.post(f"{PATH}/rotate", headers=hub_env.headers())
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["activityUrl"] != old["activityUrl"]
    assert rotated.json()["tokenRotatedAt"]
    assert (await hub_client.get(old_config)).status_code == 404
    journey.settings = rotated.json()
    assert (await hub_client.get(journey.path("config.json"))).status_code == 200


async def test_delete_removes_the_integration(journey, hub_client, hub_env):
    await journey.install()
    assert (await hub_client.delete(PATH, headers=hub_env.headers())).status_code == 204
    assert (await hub_client.get(PATH, headers=hub_env.headers())).status_code == 404
    assert (await hub_client.get(journey.path("config.json"))).status_code == 404
    assert (await hub_client.delete(PATH, headers=hub_env.headers())).status_code == 404
    assert (await hub_client.post(f"{PATH}/rotate", headers=hub_env.headers())).status_code == 404

