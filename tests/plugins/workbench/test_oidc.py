"""Single sign-on through OpenID Connect, against the fake provider (tests/fakes/oidc.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from hub_plugins.workbench import oidc
from tests.fakes.oidc import FakeOidc, running


@pytest.fixture
async def provider() -> AsyncIterator[FakeOidc]:
    async with running() as fake:
        yield fake


@pytest.fixture
def hub_settings(hub_settings: Any, provider: FakeOidc, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HUB_WORKBENCH_OIDC_ISSUER", provider.url)
    monkeypatch.setenv("HUB_WORKBENCH_OIDC_CLIENT_ID", provider.client_id)
    monkeypatch.setenv("HUB_WORKBENCH_OIDC_CLIENT_SECRET", provider.client_secret)
    oidc._discovery.clear()
    return hub_settings


@pytest.fixture
async def browser_like(hub_server: str, provider: FakeOidc) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that follows redirects and keeps cookies, as a browser does."""
    provider.redirect_uri = f"{hub_server}/ui/login/oidc/callback"
    async with httpx.AsyncClient(base_url=hub_server, follow_redirects=True) as client:
        yield client


async def test_the_sign_in_page_offers_single_sign_on(hub_env, browser_like):
    page = await browser_like.get("/ui/login")
    assert 'href="/ui/login/oidc?next=/ui/"' in page.text
    assert "Sign in with single sign-on" in page.text


async def test_a_staff_member_signs_in_through_the_provider_and_lands_where_they_asked(
        hub_env, browser_like, provider, make_staff):
    await make_staff("ana@example.com", ["workbench:view"], password=None)
    landed = await browser_like.get("/ui/login/oidc", params={"next": "/ui/acme/flows"})
    assert landed.status_code == 200, landed.text
    assert landed.url.path == "/ui/acme/flows"
    # Hub -> provider -> Hub's callback -> the page asked for; the provider checked PKCE, the
    # redirect URI and the client's secret before it answered with an ID token.
    assert [r.status_code for r in landed.history] == [303, 302, 303]
    assert "hub_staff_session" in browser_like.cookies
    assert provider.client_auth_methods == ["client_secret_basic"]


async def test_the_client_authenticates_in_the_form_when_configured(hub_env, browser_like, provider, hub,
                                                                    make_staff, monkeypatch):
    settings = hub.plugin_settings["workbench"]
    monkeypatch.setattr(hub, "plugin_settings", {**hub.plugin_settings, "workbench": msgspec.structs.replace(
        settings, oidc_token_auth_method="client_secret_post")})
    await make_staff("ana@example.com", ["workbench:view"], password=None)
    secret, provider.client_secret = provider.client_secret, "not-what-hub-has"
    page = await browser_like.get("/ui/login/oidc")
    assert page.status_code == 401 and "the code was refused (invalid_client)" in page.text
    provider.client_secret = secret
    landed = await browser_like.get("/ui/login/oidc", params={"next": "/ui/acme/flows"})
    assert landed.url.path == "/ui/acme/flows"
    assert provider.client_auth_methods == ["client_secret_post", "client_secret_post"]


@pytest.mark.parametrize("how", ["nonce", "audience", "expired", "key"])
async def test_a_bad_id_token_signs_nobody_in(hub_env, browser_like, provider, make_staff, how):
    await make_staff("ana@example.com", ["workbench:view"], password=None)
    provider.tamper(how)
    page = await browser_like.get("/ui/login/oidc")
    assert page.status_code == 401
    assert "Single sign-on failed" in page.text and "ID token was refused" in page.text
    assert "hub_staff_session" not in browser_like.cookies


async def test_an_email_that_is_not_staff_or_not_verified_is_refused(hub_env, browser_like, provider,
                                                                       make_staff):
    page = await browser_like.get("/ui/login/oidc")
    assert page.status_code == 403 and "is not a Hub staff member" in page.text
    await make_staff("ana@example.com", ["workbench:view"], password=None)
    provider.user = {"email": "ana@example.com", "email_verified": False}
    page = await browser_like.get("/ui/login/oidc")
    assert page.status_code == 403 and "did not vouch for an email" in page.text


async def test_an_email_without_email_verified_needs_the_provider_to_be_trusted(
        hub_env, browser_like, provider, make_staff, hub, monkeypatch):
    await make_staff("ana@example.com", ["workbench:view"], password=None)
    provider.user = {"email": "ana@example.com"}
    page = await browser_like.get("/ui/login/oidc")
    assert page.status_code == 403 and "did not vouch for an email" in page.text
    assert "hub_staff_session" not in browser_like.cookies
    settings = hub.plugin_settings["workbench"]
    monkeypatch.setattr(hub, "plugin_settings", {**hub.plugin_settings, "workbench": msgspec.structs.replace(
        settings, oidc_trust_unverified_email=True)})
    landed = await browser_like.get("/ui/login/oidc", params={"next": "/ui/acme/flows"})
    assert landed.url.path == "/ui/acme/flows" and "hub_staff_session" in browser_like.cookies
    browser_like.cookies.clear()
    provider.user = {"email": "ana@example.com", "email_verified": False}  # false is refused either way
    page = await browser_like.get("/ui/login/oidc")
    assert page.status_code == 403 and "did not vouch for an email" in page.text


async def test_a_state_is_used_once(hub_env, browser_like, provider, make_staff):
    await make_staff("ana@example.com", ["workbench:view"], password=None)
    start = await browser_like.get("/ui/login/oidc", follow_redirects=False)
    to_provider = await browser_like.get(start.headers["location"], follow_redirects=False)
    callback = to_provider.headers["location"]
    assert (await browser_like.get(callback)).url.path == "/ui/acme/flows"
    assert provider.token_requests == 1
    replay = await browser_like.get(callback)
    assert replay.status_code == 400 and "already used" in replay.text


async def test_without_an_issuer_single_sign_on_does_not_exist(hub_env, browser_like, hub, monkeypatch):
    monkeypatch.setattr(hub, "plugin_settings", {**hub.plugin_settings, "workbench": type(
        hub.plugin_settings["workbench"])()})
    assert (await browser_like.get("/ui/login/oidc")).status_code == 404
    assert "single sign-on" not in (await browser_like.get("/ui/login")).text
