"""PUT/GET/DELETE /v1/{env}/push/providers/apns and `hub push-apns`: validated on save, the key
never shown."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select, update

from hub.testing import make_environment
from hub_plugins.push_apns.tables import config as config_table
from tests.plugins.workbench.conftest import csrf_of, make_staff, signed_in, ui_client  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[3]


def _pem(key, password: bytes | None = None) -> str:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption).decode()


def _key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM: any of them in an answer or a log would leak the key."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


async def test_put_stores_the_key_and_get_shows_it_without_the_key(push, hub_client, hub_env, hub):
    shown = await push.configure(environment="production")
    key = push.key
    assert shown == {"environmentId": hub_env.id, "keyId": key.key_id, "teamId": key.team_id,
                     "topic": "com.example.bank", "environment": "production",
                     "createdAt": shown["createdAt"], "updatedAt": shown["updatedAt"]}
    assert shown["createdAt"] and shown["updatedAt"]
    got = await hub_client.get(f"/v1/{hub_env.id}/push/providers/apns",
                               headers=hub_env.headers(roles=["read"]))
    assert got.status_code == 200 and got.json() == shown
    for text in (json.dumps(shown), got.text):
        assert "keyP8" not in text and "PRIVATE KEY" not in text
        assert not any(line in text for line in _key_body(key.key_p8))
    async with hub.db.connect() as conn:
        stored = (await conn.execute(select(config_table.c.key_p8))).scalar_one()
    assert stored.startswith("v1.") and "PRIVATE KEY" not in stored  # sealed at rest
    assert not any(line in stored for line in _key_body(key.key_p8))


async def test_put_replaces_and_delete_removes(push, hub_client, hub_env):
    first = await push.configure()
    second = await push.configure(environment="production")
    assert second["keyId"] != first["keyId"] and second["environment"] == "production"
    assert second["createdAt"] == first["createdAt"]
    url = f"/v1/{hub_env.id}/push/providers/apns"
    assert (await hub_client.delete(url, headers=hub_env.headers())).status_code == 204
    missing = await hub_client.get(url, headers=hub_env.headers())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "no APNs configuration" in missing.json()["errors"][0]["reason"]
    assert (await hub_client.delete(url, headers=hub_env.headers())).status_code == 404


async def test_read_role_cannot_write_and_other_environments_are_separate(push, hub, hub_client, hub_env):
    await push.configure()
    url = f"/v1/{hub_env.id}/push/providers/apns"
    refused = await hub_client.put(url, headers=hub_env.headers(roles=["read"]), json=push.key.config())
    assert refused.status_code == 403
    assert (await hub_client.delete(url, headers=hub_env.headers(roles=["read"]))).status_code == 403
    other = await make_environment(hub, "other")
    assert (await hub_client.get("/v1/other/push/providers/apns", headers=other.headers())).status_code == 404
    assert (await hub_client.get(url)).status_code == 401


async def test_the_sealed_key_is_bound_to_its_environment(push, apns, hub, hub_env):
    # A sealed key copied onto another environment's row cannot be read there.
    other = await make_environment(hub, "other")
    await push.configure()
    await push.configure(env=other)
    async with hub.db.begin() as conn:
        sealed = (await conn.execute(select(config_table.c.key_p8).where(
            config_table.c.environment_id == hub_env.id))).scalar_one()
        await conn.execute(update(config_table).where(config_table.c.environment_id == "other")
                           .values(key_p8=sealed))
    result = await push.send(env="other")
    assert result["status"] == "failed", result
    assert "the APNs configuration of other cannot be read" in result["detail"]
    assert "save it again" in result["detail"] and apns.requests == 0
    assert (await push.send())["status"] == "sent"


_RSA_PEM = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
_P384_PEM = _pem(ec.generate_private_key(ec.SECP384R1()))
_ENCRYPTED_PEM = _pem(ec.generate_private_key(ec.SECP256R1()), b"secret")


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"keyP8": ...}, "keyP8", "required"),
    ({"keyP8": "not a key"}, "keyP8", "PEM"),
    ({"keyP8": ""}, "keyP8", "text of the .p8 file"),
    ({"keyP8": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "keyP8", "not a readable"),
    ({"keyP8": _RSA_PEM}, "keyP8", "EC P-256"),
    ({"keyP8": _P384_PEM}, "keyP8", "EC P-256"),
    ({"keyP8": _ENCRYPTED_PEM}, "keyP8", "is encrypted"),
    ({"keyId": ...}, "keyId", "required"),
    ({"keyId": "ABC123"}, "keyId", "10 letters and digits"),
    ({"keyId": "ABC-123456"}, "keyId", "10 letters and digits"),
    ({"teamId": ...}, "teamId", "required"),
    ({"teamId": "TEAM12345678"}, "teamId", "10 letters and digits"),
    ({"topic": ...}, "topic", "required"),
    ({"topic": "bank"}, "topic", "bundle id"),
    ({"topic": "com.example.bank app"}, "topic", "bundle id"),
    ({"environment": ...}, "environment", "required"),
    ({"environment": "staging"}, "environment", '"sandbox"'),
    ({"environment": 1}, "environment", ""),
    ({"extra": 1}, "extra", ""),
])
async def test_an_invalid_configuration_is_refused_naming_the_field(push, apns, hub_client, hub_env,
                                                                    changes, field, reason):
    key = apns.make_key()
    body: dict = key.config()
    for name, value in changes.items():
        if value is ...:
            body.pop(name)
        else:
            body[name] = value
    response = await hub_client.put(f"/v1/{hub_env.id}/push/providers/apns", headers=hub_env.headers(),
                                    json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["field"] == field and reason in error["reason"], error
    for pem in (key.key_p8, _RSA_PEM, _P384_PEM, _ENCRYPTED_PEM):
        assert not any(line in response.text for line in _key_body(pem))
    gone = await hub_client.get(f"/v1/{hub_env.id}/push/providers/apns", headers=hub_env.headers())
    assert gone.status_code == 404


async def test_secrets_never_reach_logs(push, apns, hub, hub_client, hub_env, caplog, capsys):
    import structlog

    from hub import logging as hub_logging

    root = logging.getLogger()
    saved = (structlog.get_config(), hub_logging._configured, root.handlers[:], root.level)
    # Into capsys's stderr, at DEBUG: everything Hub and its libraries would write.
    hub_logging.configure_logging(msgspec.structs.replace(hub.settings, log_level="DEBUG"))
    caplog.set_level(logging.DEBUG)
    try:
        await push.configure()
        bad = dict(push.key.config(), keyP8=push.key.key_p8.replace("\n", "\n ", 3))
        await hub_client.put(f"/v1/{hub_env.id}/push/providers/apns", headers=hub_env.headers(), json=bad)
        assert (await push.send())["status"] == "sent"
        apns.fail("ExpiredProviderToken")
        assert (await push.send())["status"] == "sent"
        apns.fail("TopicDisallowed")
        assert (await push.send())["status"] == "failed"
    finally:
        structlog.configure(**saved[0])
        hub_logging._configured, root.handlers, _ = saved[1], saved[2], root.setLevel(saved[3])
    # Even at DEBUG, the HTTP/2 libraries (whose header-block lines would show the provider
    # token, and the fake's side of the wire) stay at WARNING.
    logged = caplog.text + capsys.readouterr().err
    assert "push_apns_token_minted" in logged and "push_apns_failed" in logged  # logs were captured
    assert "Decoded (" not in logged and "Encoding " not in logged
    secrets = [*_key_body(push.key.key_p8), *apns.provider_tokens]
    assert len(apns.provider_tokens) == 2
    leaked = [s for s in secrets if s in logged]
    assert not leaked


@pytest.mark.slow
def test_the_cli_sets_shows_and_removes_the_configuration(hub_settings, apns, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=hub_settings.database_url, HUB_REDIS_URL=hub_settings.redis_url,
               HUB_SECRET_KEY=hub_settings.secret_key, HUB_VAR_DIR=hub_settings.var_dir,
               HUB_LOG_LEVEL="WARNING")

    def hub_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=120)

    assert hub_cli("env", "create", "bank").returncode == 0
    key = apns.make_key()
    key_file = tmp_path / f"AuthKey_{key.key_id}.p8"
    key_file.write_text(key.key_p8)
    options = ["--key-file", str(key_file), "--key-id", key.key_id, "--team-id", key.team_id,
               "--topic", key.topic]
    saved = hub_cli("push-apns", "set", "--env", "bank", *options, "--environment", "production")
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.startswith(f"topic=com.example.bank  environment=production  key={key.key_id}  "
                                   f"team={key.team_id}  since=")
    shown = hub_cli("push-apns", "show", "--env", "bank")
    assert shown.stdout == saved.stdout
    everything = saved.stdout + saved.stderr + shown.stdout + shown.stderr
    assert not any(line in everything for line in _key_body(key.key_p8))
    refused = hub_cli("push-apns", "set", "--env", "bank", *options, "--environment", "staging")
    assert refused.returncode == 1
    assert refused.stderr.startswith('error: --environment: must be "sandbox"')
    assert "Traceback" not in refused.stderr
    key_file.write_text("not a key")
    refused = hub_cli("push-apns", "set", "--env", "bank", *options, "--environment", "sandbox")
    assert refused.returncode == 1 and refused.stderr.startswith("error: --key-file: must be a PEM")
    assert hub_cli("push-apns", "remove", "--env", "bank").stdout == "bank: APNs configuration removed\n"
    gone = hub_cli("push-apns", "show", "--env", "bank")
    assert gone.returncode == 1 and "no APNs configuration" in gone.stderr
    helped = hub_cli("push-apns", "set", "--help")
    assert "Example" in helped.stdout



async def test_a_key_saved_in_the_staff_ui_is_used_by_the_next_send(push, apns, hub_env, signed_in):  # noqa: F811
    await push.configure()
    assert (await push.send())["status"] == "sent"  # the configuration is now cached in this process
    other = apns.make_key("com.example.wallet")
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    token = csrf_of((await admin.get(f"/ui/{hub_env.id}/settings/push-apns")).text)
    fields = {"csrf_token": token, "key_id": other.key_id, "team_id": other.team_id, "topic": other.topic,
              "environment": "sandbox"}
    saved = await admin.post(f"/ui/{hub_env.id}/settings/push-apns", data=fields,
                             files={"key_p8": ("AuthKey.p8", other.key_p8)})
    assert saved.status_code == 200, saved.text
    assert (await push.send())["status"] == "sent"
    assert [n.headers["apns-topic"] for n in apns.notifications] == ["com.example.bank", "com.example.wallet"]
