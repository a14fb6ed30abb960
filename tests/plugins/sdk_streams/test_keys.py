"""SDK keys: registering PEM keys and JWKS URLs through the API and the command line."""

from __future__ import annotations

import asyncio

import msgspec

from hub_plugins.sdk_streams.auth import authenticate
from hub_plugins.sdk_streams.testing import Signer, new_private_key
from tests.fakes.http_recorder import http_recorder
from tests.test_cli import hub_cli


def keys_url(env: str) -> str:
    return f"/v1/{env}/sdk-keys"


def signer_for(private, env: str, key_id: str = "") -> Signer:
    return Signer(
        env,
        "RS256" if private.key_type == "RSA" else "ES256",
        "https://bank.example",
        "hub-sdk",
        private,
        key_id,
    )


async def test_a_pem_key_registered_through_the_api_verifies_tokens(hub, hub_client, hub_env):
    private = new_private_key("RS256")
    created = await hub_client.post(
        keys_url(hub_env.id),
        headers=hub_env.headers(),
        json={
            "pem": private.as_pem(private=False).decode(),
            "issuer": "https://bank.example",
            "audience": "hub-sdk",
            "name": "bank backend",
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["kind"] == "pem" and key["algorithms"] == ["RS256"] and key["name"] == "bank backend"
    assert "PUBLIC KEY" in key["publicKeyPem"]
    listed = (await hub_client.get(keys_url(hub_env.id), headers=hub_env.headers(roles=["read"]))).json()
    assert [k["keyId"] for k in listed["keys"]] == [key["keyId"]]
    user = await authenticate(hub, hub_env.id, signer_for(private, hub_env.id).token("u1"))
    assert user.user_id == "u1"


async def test_private_keys_and_bad_bodies_are_refused_naming_the_field(hub_client, hub_env):
    private = new_private_key("ES256")
    url, headers = keys_url(hub_env.id), hub_env.headers()
    leaked = await hub_client.post(
        url,
        headers=headers,
        json={"pem": private.as_pem(private=True).decode(), "issuer": "i", "audience": "a"},
    )
    assert leaked.status_code == 422 and leaked.json()["errors"][0]["field"] == "pem"
    assert "private key" in leaked.json()["errors"][0]["reason"]
    neither = await hub_client.post(url, headers=headers, json={"issuer": "i", "audience": "a"})
    assert neither.status_code == 422 and neither.json()["errors"][0]["field"] == "pem"
    garbage = await hub_client.post(
        url, headers=headers, json={"pem": "hello", "issuer": "", "audience": "a"}
    )
    assert {e["field"] for e in garbage.json()["errors"]} == {"pem", "issuer"}
    p384 = await hub_client.post(
        url, headers=headers, json={"pem": new_p384_public_pem(), "issuer": "i", "audience": "a"}
    )
    assert p384.status_code == 422 and "P-256" in p384.json()["detail"]
    assert (await hub_client.get(url, headers=headers)).json()["keys"] == []


def new_p384_public_pem() -> str:
    from joserfc.jwk import ECKey

    return ECKey.generate_key("P-384").as_pem(private=False).decode()


async def test_only_admins_register_and_delete_keys(hub_client, hub_env, sdk_signer):
    url = keys_url(hub_env.id)
    body = {"pem": sdk_signer.public_pem, "issuer": "i", "audience": "a"}
    refused = await hub_client.post(url, headers=hub_env.headers(roles=["read"]), json=body)
    assert refused.status_code == 403
    assert (
        await hub_client.delete(f"{url}/{sdk_signer.key_id}", headers=hub_env.headers(roles=["cards"]))
    ).status_code == 403
    missing = await hub_client.delete(f"{url}/no-such-key", headers=hub_env.headers())
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "path.keyId"


async def test_a_jwks_url_is_fetched_once_and_its_keys_verify_tokens(hub, hub_client, hub_env):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=True)  # the fake is on loopback
    private = new_private_key("ES256")
    jwk = {**private.as_dict(private=False), "kid": "k1", "use": "sig"}
    with http_recorder() as jwks:
        jwks.reply = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}, jwk]}
        created = await hub_client.post(
            keys_url(hub_env.id),
            headers=hub_env.headers(),
            json={
                "jwksUrl": f"{jwks.url}/.well-known/jwks.json",
                "issuer": "https://bank.example",
                "audience": "hub-sdk",
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["kind"] == "jwks" and created.json()["publicKeyPem"] is None
        signer = signer_for(private, hub_env.id)
        for user_id in ("a", "b", "c"):
            token = signer.sign(
                {"sub": user_id, "iss": signer.issuer, "aud": "hub-sdk", "exp": 4_000_000_000},
                header={"kid": "k1"},
            )
            assert (await authenticate(hub, hub_env.id, token)).user_id == user_id
        assert len(jwks.requests) == 1  # cached for HUB_SDK_STREAMS_JWKS_CACHE_SECONDS


async def test_jwks_urls_on_private_addresses_are_refused_unless_allowed(hub_client, hub_env):
    with http_recorder() as jwks:
        refused = await hub_client.post(
            keys_url(hub_env.id),
            headers=hub_env.headers(),
            json={"jwksUrl": f"{jwks.url}/jwks.json", "issuer": "i", "audience": "a"},
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "jwksUrl"
        assert "HUB_ALLOW_PRIVATE_URLS" in refused.json()["errors"][0]["reason"]
        assert jwks.requests == []


async def test_a_jwks_url_without_usable_keys_is_refused(hub, hub_client, hub_env):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=True)
    with http_recorder() as jwks:
        jwks.reply = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}
        refused = await hub_client.post(
            keys_url(hub_env.id),
            headers=hub_env.headers(),
            json={"jwksUrl": jwks.url, "issuer": "i", "audience": "a"},
        )
        assert refused.status_code == 422 and "no RSA or EC P-256" in refused.json()["detail"]


async def test_the_command_line_adds_and_lists_keys(hub, hub_settings, hub_env, tmp_path):
    private = new_private_key("ES256")
    pem = tmp_path / "public.pem"
    pem.write_bytes(private.as_pem(private=False))
    added = await asyncio.to_thread(
        hub_cli,
        "sdk-keys",
        "add",
        "--env",
        hub_env.id,
        "--pem",
        str(pem),
        "--issuer",
        "https://bank.example",
        "--audience",
        "hub-sdk",
        settings=hub_settings,
    )
    key_id = added.stdout.split()[0]
    assert "ES256" in added.stdout
    listed = await asyncio.to_thread(hub_cli, "sdk-keys", "list", "--env", hub_env.id, settings=hub_settings)
    assert key_id in listed.stdout and "iss=https://bank.example" in listed.stdout
    assert (
        await authenticate(hub, hub_env.id, signer_for(private, hub_env.id).token("cli"))
    ).user_id == "cli"
    bad = await asyncio.to_thread(
        hub_cli,
        "sdk-keys",
        "add",
        "--env",
        hub_env.id,
        "--pem",
        str(pem),
        "--issuer",
        "",
        "--audience",
        "a",
        settings=hub_settings,
        check=False,
    )
    assert bad.returncode == 1 and "issuer" in bad.stderr and "Traceback" not in bad.stderr


async def test_rotated_jwks_keys_are_picked_up_and_an_unreachable_jwks_is_a_clear_401(
    hub, hub_client, hub_env
):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=True)
    hub.plugin_settings["sdk_streams"] = msgspec.structs.replace(
        hub.plugin_settings["sdk_streams"], jwks_cache_seconds=0
    )
    first, second = new_private_key("RS256"), new_private_key("ES256")
    claims = {"sub": "u1", "iss": "https://bank.example", "aud": "hub-sdk", "exp": 4_000_000_000}
    with http_recorder() as jwks:
        jwks.reply = {"keys": [{**first.as_dict(private=False), "kid": "k1"}]}
        created = await hub_client.post(
            keys_url(hub_env.id),
            headers=hub_env.headers(),
            json={"jwksUrl": jwks.url, "issuer": "https://bank.example", "audience": "hub-sdk"},
        )
        assert created.status_code == 201
        jwks.reply = {"keys": [{**second.as_dict(private=False), "kid": "k2"}]}
        rotated = signer_for(second, hub_env.id).sign(claims, header={"kid": "k2"})
        assert (await authenticate(hub, hub_env.id, rotated)).user_id == "u1"
    old = signer_for(first, hub_env.id).sign({**claims, "sub": "u2"}, header={"kid": "k1"})
    response = await hub_client.get(
        f"/v1/{hub_env.id}/sdk/devices", headers={"Authorization": f"Bearer {old}"}
    )
    assert response.status_code == 401 and "unavailable" in response.json()["detail"]
