import base64
import time

import pytest

from hub.api.auth import TokenService
from hub.testing import make_environment


async def _token(client, env, client_id, secret, **kw):
    return await client.post(f"/v1/{env}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}, **kw)


async def test_client_credentials_form_returns_a_short_lived_bearer_token(hub_client, hub_env):
    response = await _token(hub_client, hub_env.id, hub_env.client_id, hub_env.client_secret)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    users = await hub_client.get(f"/v1/{hub_env.id}/users",
                                 headers={"Authorization": f"Bearer {body['access_token']}"})
    assert users.status_code == 200


async def test_client_credentials_as_json_and_as_basic_auth(hub_client, hub_env):
    as_json = await hub_client.post(f"/v1/{hub_env.id}/oauth/token", json={
        "grant_type": "client_credentials", "client_id": hub_env.client_id,
        "client_secret": hub_env.client_secret})
    assert as_json.status_code == 200
    basic = base64.b64encode(f"{hub_env.client_id}:{hub_env.client_secret}".encode()).decode()
    as_basic = await hub_client.post(f"/v1/{hub_env.id}/oauth/token",
                                     data={"grant_type": "client_credentials"},
                                     headers={"Authorization": f"Basic {basic}"})
    assert as_basic.status_code == 200


async def test_wrong_secret_is_401_problem_with_oauth_error(hub_client, hub_env):
    response = await _token(hub_client, hub_env.id, hub_env.client_id, "nope")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["error"] == "invalid_client"


async def test_client_of_another_environment_cannot_get_a_token_here(hub, hub_client, hub_env):
    other = await make_environment(hub, "other")
    response = await _token(hub_client, hub_env.id, other.client_id, other.client_secret)
    assert response.status_code == 401


async def test_unsupported_grant_type_is_400(hub_client, hub_env):
    response = await hub_client.post(f"/v1/{hub_env.id}/oauth/token",
                                     data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "grant_type"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-jwt", "Basic abc"])
async def test_missing_or_malformed_token_is_401(hub_client, hub_env, header):
    headers = {"Authorization": header} if header else {}
    response = await hub_client.get(f"/v1/{hub_env.id}/users", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["field"] == "header.authorization"


async def test_forged_token_is_401(hub_client, hub_env):
    forged, _ = TokenService("another-secret", 3600).issue(hub_env.client_id, hub_env.id, ["admin"])
    response = await hub_client.get(f"/v1/{hub_env.id}/users",
                                    headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_expired_token_is_401(hub, hub_client, hub_env):
    expired = TokenService(hub.secret_key, -10)
    token, _ = expired.issue(hub_env.client_id, hub_env.id, ["admin"])
    response = await hub_client.get(f"/v1/{hub_env.id}/users",
                                    headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_token_of_another_environment_is_403(hub, hub_client, hub_env):
    other = await make_environment(hub, "other")
    response = await hub_client.get(f"/v1/{hub_env.id}/users", headers=other.headers())
    assert response.status_code == 403
    assert "other" in response.json()["detail"]


async def test_role_without_the_permission_is_403(hub_client, hub_env):
    read_only = hub_env.headers(roles=["read"])
    assert (await hub_client.get(f"/v1/{hub_env.id}/users", headers=read_only)).status_code == 200
    response = await hub_client.put(f"/v1/{hub_env.id}/users", headers=read_only,
                                    json={"users": [{"userId": "u1"}]})
    assert response.status_code == 403
    trigger_only = hub_env.headers(roles=["trigger"])
    assert (await hub_client.get(f"/v1/{hub_env.id}/users",
                                 headers=trigger_only)).status_code == 403


async def test_revoked_client_gets_no_new_token(hub, hub_client, hub_env):
    from hub.services.environments import revoke_client

    assert await revoke_client(hub.db, hub_env.client_id)
    response = await _token(hub_client, hub_env.id, hub_env.client_id, hub_env.client_secret)
    assert response.status_code == 401


def test_every_v1_route_declares_how_it_is_authenticated(hub_app):
    from hub.api.auth import route_handlers

    checked = 0
    for route in hub_app.routes:
        if route.path.startswith("/v1/"):
            for handler in route_handlers(route):  # HTTP routes and WebSocket routes
                if "OPTIONS" in getattr(handler, "http_methods", ()):
                    continue
                checked += 1
                assert "permission" in handler.opt or "auth" in handler.opt, route.path
    assert checked > 20


def test_token_verification_is_cached_but_expiry_still_applies():
    service = TokenService("k", 1)
    token, _ = service.issue("c", "e", ["admin"])
    assert service.verify(token) is not None
    assert service.verify(token) is not None  # from the cache
    time.sleep(2.1)
    assert service.verify(token) is None
