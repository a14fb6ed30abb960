"""Settings pages plugins contribute through ``hub_register_ui``: webhooks, push providers,
Marketo, and a third-party plugin's page (in the navigation only for members with its
permission, and guarded on the server)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar import Request, Response, get
from litestar.params import FromPath

from hub.hookspecs import hookimpl
from hub.registry import UiEntry
from hub.services import flows as flow_service
from hub_plugins.marketo import config as marketo_config
from hub_plugins.webhooks import inbound_store, outbound_service
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench import web
from tests.plugins.workbench.conftest import csrf_of


@get("/ui/{env:str}/settings/loyalty", opt=web.staff_page("workbench:admin"))
async def loyalty_page(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    return web.html(f"<h1>Loyalty points of {env}</h1>")


class LoyaltyPlugin:
    """A third-party plugin adding one settings page to the staff UI."""

    @hookimpl
    def hub_register_ui(self, register: Any) -> None:
        register(UiEntry(id="loyalty", title="Loyalty", path="/ui/{env}/settings/loyalty"))

    @hookimpl
    def hub_register_routes(self, register: Any) -> None:
        register(web.router([loyalty_page]))


@pytest.fixture
def hub_plugins() -> list[Any]:
    return [LoyaltyPlugin()]


@pytest.fixture
def hub_settings(hub_settings: Any) -> Any:
    # Webhook targets and the FCM token endpoint on loopback, as in the plugins' own tests.
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)


def nav_titles(html: str) -> list[str]:
    import re

    return re.findall(r'<span class="section">Settings</span> ([^<]+)</a>', html)


async def test_settings_pages_are_in_the_navigation_of_admins_only(hub, hub_env, signed_in):
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    page = await admin.get("/ui/acme/flows")
    assert nav_titles(page.text) == ["Loyalty", "Marketo", "Push: Apple (APNs)", "Push: Firebase (FCM)",
                                     "Salesforce Marketing Cloud", "Webhooks"]
    editor = await signed_in("eve@example.com", ["workbench:edit"])
    page = await editor.get("/ui/acme/flows")
    assert nav_titles(page.text) == []
    token = csrf_of(page.text)
    for path in ("/ui/acme/settings/loyalty", "/ui/acme/settings/webhooks", "/ui/acme/settings/push-fcm",
                 "/ui/acme/settings/push-apns", "/ui/acme/settings/marketo", "/ui/acme/settings/sfmc"):
        assert (await editor.get(path)).status_code == 403, path
        assert (await admin.get(path)).status_code == 200, path
    for path in ("/ui/acme/settings/push-fcm", "/ui/acme/settings/push-apns"):
        assert (await editor.post(path, headers={"X-CSRF-Token": token})).status_code == 403
    assert "Loyalty points of acme" in (await admin.get("/ui/acme/settings/loyalty")).text


async def test_another_environments_admin_is_refused(hub, hub_env, signed_in):
    from hub.testing import make_environment

    await make_environment(hub, "other")
    admin = await signed_in("ada@example.com", ["workbench:admin"], ["other"])
    assert (await admin.get("/ui/other/settings/loyalty")).status_code == 200
    assert (await admin.get("/ui/acme/settings/loyalty")).status_code == 403
    assert (await admin.get("/ui/acme/settings/webhooks")).status_code == 403


async def test_webhooks_page_lists_and_pauses_without_showing_secrets(hub, hub_env, signed_in):
    created = await outbound_service.create_subscription(hub, "acme", {
        "url": "http://127.0.0.1:9/hook", "description": "CRM",
        "headers": {"X-Api-Key": "s3cret"}})
    await flow_service.create_flow(hub, "acme", {"name": "Hi", "steps": [{"id": "end", "type": "end"}]}, "hi")
    await flow_service.publish(hub, "acme", "hi")
    trigger, token, secret = await inbound_store.create_trigger(hub, "acme", flow_id="hi", name="From CRM",
                                                               signed=True, mapping=None)
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    page = await admin.get("/ui/acme/settings/webhooks")
    assert created["id"] in page.text and "CRM" in page.text and "From CRM" in page.text
    assert "X-Api-Key" in page.text
    for hidden in ("s3cret", created["secret"], token, secret):
        assert hidden not in page.text
    paused = await admin.post(f"/ui/acme/settings/webhooks/{created['id']}/state",
                              data={"state": "paused", "csrf_token": csrf_of(page.text)})
    assert paused.status_code == 200 and "paused" in paused.text and "Resume" in paused.text
    assert (await outbound_service.get_subscription(hub, "acme", created["id"]))["state"] == "paused"
    resumed = await admin.post(f"/ui/acme/settings/webhooks/{created['id']}/state",
                               data={"state": "active", "csrf_token": csrf_of(page.text)})
    assert "resumed" in resumed.text
    assert (await outbound_service.get_subscription(hub, "acme", created["id"]))["state"] == "active"
    missing = await admin.post("/ui/acme/settings/webhooks/nope/state",
                               data={"state": "paused", "csrf_token": csrf_of(page.text)})
    assert missing.status_code == 404
    actions = [e["action"] for e in await staff_service.audit_log(hub, "acme")]
    assert actions[:2] == ["webhook.resumed", "webhook.paused"]


async def test_a_workbench_editor_cannot_pause_a_webhook_or_upload_push_keys(hub, hub_env, signed_in):
    created = await outbound_service.create_subscription(hub, "acme", {"url": "http://127.0.0.1:9/hook"})
    editor = await signed_in("eve@example.com", ["workbench:edit"])
    token = csrf_of((await editor.get("/ui/acme/flows")).text)
    paused = await editor.post(f"/ui/acme/settings/webhooks/{created['id']}/state",
                               data={"state": "paused", "csrf_token": token}, headers={"X-CSRF-Token": token})
    assert paused.status_code == 403
    assert (await outbound_service.get_subscription(hub, "acme", created["id"]))["state"] == "active"
    upload = await editor.post("/ui/acme/settings/push-fcm", data={"csrf_token": token},
                               headers={"X-CSRF-Token": token},
                               files={"service_account": ("key.json", '{"type": "service_account"}')})
    assert upload.status_code == 403
    assert [e["action"] for e in await staff_service.audit_log(hub, "acme")] == []


async def test_fcm_credentials_upload_never_shows_the_key(hub, hub_env, signed_in):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = {"type": "service_account", "project_id": "bank-app-123", "private_key_id": "abc123",
               "private_key": pem, "client_email": "push@bank-app-123.iam.gserviceaccount.com",
               "token_uri": "http://127.0.0.1:9/token"}
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    page = await admin.get("/ui/acme/settings/push-fcm")
    assert "not configured" in page.text
    token = csrf_of(page.text)
    bad = await admin.post("/ui/acme/settings/push-fcm", data={"csrf_token": token},
                           files={"service_account": ("key.json", json.dumps({**account, "type": "user"}))})
    assert bad.status_code == 422 and "serviceAccount.type" in bad.text
    saved = await admin.post("/ui/acme/settings/push-fcm",
                             data={"csrf_token": token, "platform_android": "on"},
                             files={"service_account": ("key.json", json.dumps(account))})
    assert saved.status_code == 200 and "bank-app-123" in saved.text and "abc123" in saved.text
    assert "PRIVATE KEY" not in saved.text
    assert "PRIVATE KEY" not in (await admin.get("/ui/acme/settings/push-fcm")).text


async def test_apns_key_upload_shows_its_ids_only(hub, hub_env, signed_in):
    key = ec.generate_private_key(ec.SECP256R1())
    p8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    token = csrf_of((await admin.get("/ui/acme/settings/push-apns")).text)
    fields = {"csrf_token": token, "key_id": "ABC123DEFG", "team_id": "TEAM123456", "topic": "not a bundle",
              "environment": "sandbox"}
    bad = await admin.post("/ui/acme/settings/push-apns", data=fields, files={"key_p8": ("AuthKey.p8", p8)})
    assert bad.status_code == 422 and 'id="apns-topic-error"' in bad.text
    assert 'value="ABC123DEFG"' in bad.text  # what was typed is kept
    saved = await admin.post("/ui/acme/settings/push-apns", data={**fields, "topic": "com.example.bank"},
                             files={"key_p8": ("AuthKey.p8", p8)})
    assert saved.status_code == 200 and "com.example.bank" in saved.text and "sandbox" in saved.text
    assert "PRIVATE KEY" not in saved.text


async def test_marketo_page_summarises_the_integration(hub, hub_env, signed_in):
    admin = await signed_in("ada@example.com", ["workbench:admin"])
    assert "not configured" in (await admin.get("/ui/acme/settings/marketo")).text
    _shown, api_key, _created = await marketo_config.save(hub, "acme", rotate_api_key=True)
    page = await admin.get("/ui/acme/settings/marketo")
    assert "configured" in page.text and "/marketo/acme/openapi.json" in page.text
    assert api_key and api_key not in page.text


async def test_sfmc_page_shows_the_activity_and_the_profile_sync_never_their_secrets(hub, hub_env, signed_in):
    from hub_plugins.salesforce_mc import config as sfmc_config

    admin = await signed_in("ada@example.com", ["workbench:admin"])
    page = await admin.get("/ui/acme/settings/sfmc")
    assert page.text.count("not configured") == 2
    secret = "jwt-signing-secret-" + "x" * 40
    await sfmc_config.save(hub, "acme", {"jwtSigningSecret": secret, "timeoutMs": 30000})
    page = await admin.get("/ui/acme/settings/sfmc")
    assert "/sfmc/" in page.text and "30000 ms" in page.text and secret not in page.text
    assert page.text.count("not configured") == 1  # the profile sync is still to be set up
