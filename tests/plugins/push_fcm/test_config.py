"""PUT/GET/DELETE /v1/{env}/push/providers/fcm and `hub push-fcm`: validated on save, the key never shown."""

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
from sqlalchemy import select

from hub.testing import make_environment
from hub_plugins.push_fcm.tables import config as config_table
from tests.plugins.workbench.conftest import csrf_of, make_staff, signed_in, ui_client  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[3]


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM: any of them in an answer or a log would leak the key."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


async def test_put_stores_the_account_and_get_shows_it_without_the_key(push, hub_client, hub_env, hub):
    shown = await push.configure()
    account = push.account
    assert shown["projectId"] == "hub-test-project"
    assert shown["clientEmail"] == account["client_email"]
    assert shown["privateKeyId"] == account["private_key_id"]
    assert shown["platforms"] == ["android", "web"]
    assert shown["createdAt"] and shown["updatedAt"]
    got = await hub_client.get(f"/v1/{hub_env.id}/push/providers/fcm",
                               headers=hub_env.headers(roles=["read"]))
    assert got.status_code == 200 and got.json() == shown
    for text in (json.dumps(shown), got.text):
        assert "private_key\"" not in text and "privateKey\"" not in text
        assert not any(line in text for line in _key_body(account["private_key"]))
    async with hub.db.connect() as conn:
        stored = (await conn.execute(select(config_table.c.private_key))).scalar_one()
    assert stored.startswith("v1.") and "PRIVATE KEY" not in stored  # sealed at rest


async def test_put_replaces_and_delete_removes(push, hub_client, hub_env):
    first = await push.configure()
    second = await push.configure(platforms=["web", "ios", "android"])
    assert second["clientEmail"] != first["clientEmail"]
    assert second["platforms"] == ["android", "web", "ios"]
    assert second["createdAt"] == first["createdAt"]
    url = f"/v1/{hub_env.id}/push/providers/fcm"
    assert (await hub_client.delete(url, headers=hub_env.headers())).status_code == 204
    missing = await hub_client.get(url, headers=hub_env.headers())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await hub_client.delete(url, headers=hub_env.headers())).status_code == 404


async def test_read_role_cannot_write_and_other_environments_are_separate(push, hub, hub_client, hub_env):
    await push.configure()
    url = f"/v1/{hub_env.id}/push/providers/fcm"
    refused = await hub_client.put(url, headers=hub_env.headers(roles=["read"]),
                                   json={"serviceAccount": push.account})
    assert refused.status_code == 403
    assert (await hub_client.delete(url, headers=hub_env.headers(roles=["read"]))).status_code == 403
    other = await make_environment(hub, "other")
    assert (await hub_client.get("/v1/other/push/providers/fcm", headers=other.headers())).status_code == 404
    assert (await hub_client.get(url)).status_code == 401


def _broken(account: dict, **changes) -> dict:
    broken = dict(account)
    for name, value in changes.items():
        if value is ...:
            broken.pop(name)
        else:
            broken[name] = value
    return broken


_EC_PEM = _pem(ec.generate_private_key(ec.SECP256R1()))
_SMALL_RSA_PEM = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"type": "authorized_user"}, "serviceAccount.type", "service_account"),
    ({"project_id": ...}, "serviceAccount.project_id", "required"),
    ({"project_id": "Not A Project"}, "serviceAccount.project_id", "Firebase project id"),
    ({"client_email": "nobody"}, "serviceAccount.client_email", "e-mail"),
    ({"private_key": ...}, "serviceAccount.private_key", "required"),
    ({"private_key": "not a key"}, "serviceAccount.private_key", "PEM"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
     "serviceAccount.private_key", "not a readable"),
    ({"private_key": _EC_PEM}, "serviceAccount.private_key", "RSA"),
    ({"private_key": _SMALL_RSA_PEM}, "serviceAccount.private_key", "2048"),
    ({"private_key_id": "a b"}, "serviceAccount.private_key_id", "letters"),
    ({"token_uri": "ftp://oauth2.googleapis.com/token"}, "serviceAccount.token_uri", "http(s)"),
])
async def test_an_invalid_service_account_is_refused_naming_the_field(push, google, hub_client, hub_env,
                                                                      changes, field, reason):
    account = google.oauth.service_account()
    response = await hub_client.put(f"/v1/{hub_env.id}/push/providers/fcm", headers=hub_env.headers(),
                                    json={"serviceAccount": _broken(account, **changes)})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["field"] == field and reason in error["reason"], error
    assert not any(line in response.text for line in _key_body(account["private_key"]))
    gone = await hub_client.get(f"/v1/{hub_env.id}/push/providers/fcm", headers=hub_env.headers())
    assert gone.status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"platforms": ["android", "blackberry"]}, "platforms[1]"),
    ({"platforms": []}, "platforms"),
    ({"extra": 1}, "extra"),
    ({"serviceAccount": "a string"}, "serviceAccount"),
])
async def test_invalid_platforms_and_unknown_fields_are_refused(push, google, hub_client, hub_env,
                                                                 body, field):
    request = {"serviceAccount": google.oauth.service_account(), **body}
    response = await hub_client.put(f"/v1/{hub_env.id}/push/providers/fcm", headers=hub_env.headers(),
                                    json=request)
    assert response.status_code in (400, 422), response.text
    assert response.json()["errors"][0]["field"] == field


async def test_token_uri_must_be_https_on_an_allowed_host_unless_private_urls_are_allowed(
        push, google, hub, hub_client, hub_env):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    url, headers = f"/v1/{hub_env.id}/push/providers/fcm", hub_env.headers()
    loopback = google.oauth.service_account()  # token_uri is the fake on http://127.0.0.1
    response = await hub_client.put(url, headers=headers, json={"serviceAccount": loopback})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"field": "serviceAccount.token_uri",
                                            "reason": "must be an https URL"}
    elsewhere = dict(loopback, token_uri="https://oauth.attacker.example/token")
    response = await hub_client.put(url, headers=headers, json={"serviceAccount": elsewhere})
    assert response.status_code == 422
    reason = response.json()["errors"][0]["reason"]
    assert "oauth.attacker.example is not allowed" in reason and "HUB_PUSH_FCM_ALLOWED_TOKEN_HOSTS" in reason


async def test_secrets_never_reach_logs(push, google, hub, hub_client, hub_env, caplog, capsys):
    import structlog

    from hub import logging as hub_logging

    root = logging.getLogger()
    saved = (structlog.get_config(), hub_logging._configured, root.handlers[:], root.level)
    # Into capsys's stderr, at DEBUG: everything Hub and its libraries would write.
    hub_logging.configure_logging(msgspec.structs.replace(hub.settings, log_level="DEBUG"))
    caplog.set_level(logging.DEBUG)
    try:
        await push.configure()
        bad = dict(push.account, private_key=push.account["private_key"].replace("\n", "\n ", 3))
        await hub_client.put(f"/v1/{hub_env.id}/push/providers/fcm", headers=hub_env.headers(),
                             json={"serviceAccount": bad})
        assert (await push.send())["status"] == "sent"
        google.fcm.fail("UNAUTHENTICATED")
        assert (await push.send())["status"] == "sent"
        google.fcm.fail("THIRD_PARTY_AUTH_ERROR")
        assert (await push.send())["status"] == "failed"
    finally:
        structlog.configure(**saved[0])
        hub_logging._configured, root.handlers, _ = saved[1], saved[2], root.setLevel(saved[3])
    logged = caplog.text + capsys.readouterr().err
    assert "push_fcm_token_refreshed" in logged and "push_fcm_failed" in logged  # logs were captured
    secrets = [*_key_body(push.account["private_key"]), *google.oauth.issued]
    assert len(google.oauth.issued) == 2
    leaked = [s for s in secrets if s in logged]
    assert not leaked


@pytest.mark.slow
def test_the_cli_sets_shows_and_removes_the_configuration(hub_settings, google, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=hub_settings.database_url, HUB_REDIS_URL=hub_settings.redis_url,
               HUB_SECRET_KEY=hub_settings.secret_key, HUB_VAR_DIR=hub_settings.var_dir,
               HUB_ALLOW_PRIVATE_URLS="true", HUB_LOG_LEVEL="WARNING")

    def hub_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=120)

    assert hub_cli("env", "create", "bank").returncode == 0
    account = google.oauth.service_account()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(account))
    saved = hub_cli("push-fcm", "set", "--env", "bank", "--service-account", str(key_file),
                    "--platforms", "android,ios")
    assert saved.returncode == 0, saved.stderr
    assert "project=hub-test-project" in saved.stdout and "platforms=android,ios" in saved.stdout
    shown = hub_cli("push-fcm", "show", "--env", "bank")
    assert account["client_email"] in shown.stdout and account["private_key_id"] in shown.stdout
    everything = saved.stdout + saved.stderr + shown.stdout + shown.stderr
    assert not any(line in everything for line in _key_body(account["private_key"]))
    key_file.write_text(json.dumps(dict(account, type="user")))
    refused = hub_cli("push-fcm", "set", "--env", "bank", "--service-account", str(key_file))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: --service-account: serviceAccount.type")
    assert "Traceback" not in refused.stderr
    assert hub_cli("push-fcm", "remove", "--env", "bank").stdout == "bank: FCM configuration removed\n"
    gone = hub_cli("push-fcm", "show", "--env", "bank")
    assert gone.returncode == 1 and "no FCM configuration" in gone.stderr
    helped = hub_cli("push-fcm", "set", "--help")
    assert "Example" in helped.stdout



async def test_a_key_saved_in_the_staff_ui_is_used_by_the_next_send(push, google, hub_env, signed_in):  # noqa: F811
    await push.configure()
    assert (await push.send())["status"] == "sent"  # the configuration is now cached in this process
    other = google.oauth.service_account("other-project")
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    token = csrf_of((await admin.get(f"/ui/{hub_env.id}/settings/push-fcm")).text)
    saved = await admin.post(f"/ui/{hub_env.id}/settings/push-fcm", data={"csrf_token": token},
                             files={"service_account": ("key.json", json.dumps(other))})
    assert saved.status_code == 200, saved.text
    assert (await push.send())["status"] == "sent"
    assert [m.project for m in google.fcm.messages] == ["hub-test-project", "other-project"]
