"""End-user tokens: what is accepted, what is refused and why, and the customer it touches."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from hub.api.problems import Problem
from hub.services import customers
from hub_plugins.sdk_streams.auth import authenticate
from hub_plugins.sdk_streams.testing import Signer, make_signer, new_private_key
from tests.plugins.sdk_streams.conftest import bearer


def feed_url(env: str) -> str:
    return f"/v1/{env}/sdk/streams/default/cards"


async def refusal(hub, env, token) -> str:
    with pytest.raises(Problem) as error:
        await authenticate(hub, env, token)
    assert error.value.status == 401
    assert error.value.headers == {"WWW-Authenticate": 'Bearer realm="hub-sdk"'}
    return error.value.detail


async def test_a_signed_token_names_the_user_and_keeps_its_claims(hub, hub_env, sdk_signer):
    user = await authenticate(hub, hub_env.id, sdk_signer.token("u1", plan="gold"))
    assert user.env == hub_env.id and user.user_id == "u1" and user.claims["plan"] == "gold"


async def test_rs256_keys_work_too(hub, hub_env):
    signer = await make_signer(hub, hub_env.id, alg="RS256", issuer="https://rsa.example")
    assert (await authenticate(hub, hub_env.id, signer.token("u2"))).user_id == "u2"


async def test_first_contact_creates_the_customer_and_records_when_they_were_seen(hub, hub_env, sdk_signer):
    await authenticate(hub, hub_env.id, sdk_signer.token("newbie"))
    profile = await customers.get_customer(hub, hub_env.id, "newbie")
    assert profile.first_seen_at is not None and profile.last_seen_at == profile.first_seen_at


async def test_last_seen_is_written_at_most_once_per_interval(hub, hub_env, sdk_signer, clock):
    await authenticate(hub, hub_env.id, sdk_signer.token("poller"))
    first = (await customers.get_customer(hub, hub_env.id, "poller")).last_seen_at
    clock.advance(seconds=5)
    await authenticate(hub, hub_env.id, sdk_signer.token("poller"))
    assert (await customers.get_customer(hub, hub_env.id, "poller")).last_seen_at == first
    assert await hub.redis.ttl(f"sdk_streams:seen:{hub_env.id}:poller") > 0


async def test_expired_tokens_are_refused_beyond_the_leeway(hub, hub_env, sdk_signer):
    assert "expired" in await refusal(hub, hub_env.id, sdk_signer.token("u1", expires_in=-120))
    # within the 60 s leeway a just-expired token still passes (clock skew)
    assert (await authenticate(hub, hub_env.id, sdk_signer.token("u1", expires_in=-30))).user_id == "u1"


async def test_a_token_without_exp_is_refused(hub, hub_env, sdk_signer):
    assert "exp" in await refusal(hub, hub_env.id, sdk_signer.token("u1", exp=None))


async def test_wrong_audience_and_wrong_issuer_say_so(hub, hub_env, sdk_signer):
    assert "wrong audience" in await refusal(hub, hub_env.id, sdk_signer.token("u1", aud="someone-else"))
    assert "unknown issuer" in await refusal(
        hub, hub_env.id, sdk_signer.token("u1", iss="https://evil.example")
    )


async def test_an_audience_list_naming_the_key_audience_is_accepted(hub, hub_env, sdk_signer):
    token = sdk_signer.token("u1", aud=["other", "hub-sdk"])
    assert (await authenticate(hub, hub_env.id, token)).user_id == "u1"


async def test_a_token_signed_by_an_unregistered_key_is_refused(hub, hub_env, sdk_signer):
    rogue = Signer(hub_env.id, "ES256", sdk_signer.issuer, sdk_signer.audience, new_private_key("ES256"), "")
    assert "signature matches no SDK key" in await refusal(hub, hub_env.id, rogue.token("u1"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forged(header: dict, claims: dict, key: bytes) -> str:
    """A token signed HS256 with ``key`` (the algorithm-confusion attack: the public key as secret)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def test_alg_none_and_hs256_are_refused(hub, hub_env, sdk_signer):
    claims = {"sub": "u1", "iss": sdk_signer.issuer, "aud": sdk_signer.audience, "exp": 4_000_000_000}
    hs256 = _forged({"alg": "HS256", "typ": "JWT"}, claims, sdk_signer.public_pem.encode())
    assert "'HS256' is not accepted" in await refusal(hub, hub_env.id, hs256)
    unsigned = f"{_b64(json.dumps({'alg': 'none'}).encode())}.{_b64(json.dumps(claims).encode())}."
    assert "'none' is not accepted" in await refusal(hub, hub_env.id, unsigned)
    # an ES256 header over a signature made some other way does not verify either
    confused = _forged({"alg": "ES256", "typ": "JWT"}, claims, sdk_signer.public_pem.encode())
    assert "signature matches no SDK key" in await refusal(hub, hub_env.id, confused)


async def test_garbage_and_missing_subjects_are_refused(hub, hub_env, sdk_signer):
    assert "not a JWT" in await refusal(hub, hub_env.id, "not-a-token")
    assert "not a JWT" in await refusal(hub, hub_env.id, "a.b.c")
    assert "sub claim" in await refusal(hub, hub_env.id, sdk_signer.token(""))
    assert "sub claim" in await refusal(hub, hub_env.id, sdk_signer.token("a/b"))


async def test_an_environment_without_keys_says_how_to_add_one(hub, hub_env):
    signer = Signer(hub_env.id, "ES256", "https://bank.example", "hub-sdk", new_private_key("ES256"), "")
    assert "has no SDK keys" in await refusal(hub, hub_env.id, signer.token("u1"))


async def test_routes_answer_401_problems_with_the_reason(hub_client, hub_env, sdk_signer):
    missing = await hub_client.get(feed_url(hub_env.id))
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["www-authenticate"] == 'Bearer realm="hub-sdk"'
    assert missing.json()["errors"][0]["field"] == "header.authorization"
    expired = await hub_client.get(feed_url(hub_env.id), headers=bearer(sdk_signer, "u1", expires_in=-600))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    api_client = await hub_client.get(feed_url(hub_env.id), headers=hub_env.headers())
    assert api_client.status_code == 401 and "HS256" in api_client.json()["detail"]
    ok = await hub_client.get(feed_url(hub_env.id), headers=bearer(sdk_signer, "u1"))
    assert ok.status_code == 200, ok.text


async def test_a_deleted_key_stops_working(hub, hub_client, hub_env, sdk_signer):
    token = sdk_signer.token("u1")
    assert (
        await hub_client.get(feed_url(hub_env.id), headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200
    deleted = await hub_client.delete(
        f"/v1/{hub_env.id}/sdk-keys/{sdk_signer.key_id}", headers=hub_env.headers()
    )
    assert deleted.status_code == 204
    again = await hub_client.get(feed_url(hub_env.id), headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
