"""Staff sign-in, sessions, CSRF, the failed sign-in limit and permissions, through HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from hub.services import environments
from hub_plugins.workbench import staff as staff_service
from tests.plugins.workbench.conftest import PASSWORD, csrf_of, form_token, staff_login


async def test_a_page_without_a_session_redirects_to_sign_in_and_back(hub_env, ui_client, make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    client = ui_client()
    page = await client.get("/ui/acme/flows?state=draft")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Facme%2Fflows%3Fstate%3Ddraft"
    signed = await staff_login(client, "ana@example.com", next="/ui/acme/flows?state=draft")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui/acme/flows?state=draft"
    cookie = signed.headers["set-cookie"]
    assert "hub_staff_session=" in cookie and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http here; HTTPS requests get Secure (below)


async def test_htmx_requests_without_a_session_get_401_and_hx_redirect(hub_env, ui_client):
    response = await ui_client().get("/ui/acme/flows", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"].startswith("/ui/login")


async def test_the_session_cookie_is_secure_over_https(hub_env, ui_client, make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    client = ui_client()
    client.base_url = "https://testserver"
    page = await client.get("/ui/login")
    response = await client.post("/ui/login", data={
        "email": "ana@example.com", "password": PASSWORD, "csrf_token": form_token(page.text)})
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("email,password", [
    ("ana@example.com", "wrong password!!"), ("nobody@example.com", PASSWORD), ("not-an-email", PASSWORD)])
async def test_a_wrong_email_or_password_is_refused_with_one_message(hub_env, ui_client, make_staff,
                                                                       email, password):
    await make_staff("ana@example.com", ["workbench:view"])
    response = await staff_login(ui_client(), email, password)
    assert response.status_code == 401
    assert "do not match an active account" in response.text
    assert "hub_staff_session" not in response.headers.get("set-cookie", "")


async def test_the_sign_in_form_needs_its_csrf_token(hub_env, ui_client, make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    client = ui_client()
    await client.get("/ui/login")
    response = await client.post("/ui/login", data={"email": "ana@example.com", "password": PASSWORD,
                                                    "csrf_token": "forged"})
    assert response.status_code == 403
    assert "expired" in response.text


async def test_sign_in_never_redirects_off_the_ui(hub_env, ui_client, make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/acme/customers", "/ui\\..\\x"):
        response = await staff_login(ui_client(), "ana@example.com", next=target)
        assert response.headers["location"] == "/ui/", target


async def test_failed_sign_ins_are_limited_per_email(hub, hub_env, ui_client, make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    limit = staff_service.settings_of(hub).login_max_failures
    for _ in range(limit):
        assert (await staff_login(ui_client(), "ana@example.com", "wrong password!!")).status_code == 401
    blocked = await staff_login(ui_client(), "ana@example.com", PASSWORD)
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= staff_service.settings_of(hub).login_window_seconds
    assert "Too many failed sign-ins" in blocked.text
    await hub.redis.delete("hub:workbench:login-failures:email:ana@example.com",
                           "hub:workbench:login-failures:address:127.0.0.1")
    assert (await staff_login(ui_client(), "ana@example.com", PASSWORD)).status_code == 303


async def test_failed_sign_ins_are_limited_per_client_address_across_emails(hub, hub_env, ui_client,
                                                                             make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    limit = staff_service.settings_of(hub).login_max_failures
    for n in range(limit):  # one failure each for many emails, all from one address
        failed = await staff_login(ui_client(), f"guess{n}@example.com", "wrong password!!")
        assert failed.status_code == 401
    blocked = await staff_login(ui_client(), "ana@example.com", PASSWORD)
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= staff_service.settings_of(hub).login_window_seconds
    assert await hub.redis.get("hub:workbench:login-failures:email:ana@example.com") is None
    await hub.redis.delete("hub:workbench:login-failures:address:127.0.0.1")
    assert (await staff_login(ui_client(), "ana@example.com", PASSWORD)).status_code == 303


async def test_a_disabled_member_cannot_sign_in_and_loses_open_sessions(hub, hub_env, signed_in):
    client = await signed_in("ana@example.com", ["workbench:view"])
    assert (await client.get("/ui/acme/")).status_code == 303
    await staff_service.set_staff(hub, "ana@example.com", disabled=True)
    assert (await client.get("/ui/acme/flows")).headers["location"].startswith("/ui/login")


async def test_signing_out_ends_the_session_and_needs_the_csrf_token(hub_env, signed_in):
    client = await signed_in("ana@example.com", ["workbench:view"])
    landing = await client.get("/ui/", follow_redirects=True)
    assert landing.status_code == 200, landing.text
    forged = await client.post("/ui/logout", data={"csrf_token": "nope"})
    assert forged.status_code == 403
    cross_site = await client.post("/ui/logout", data={"csrf_token": csrf_of(landing.text)},
                                   headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    out = await client.post("/ui/logout", data={"csrf_token": csrf_of(landing.text)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    client.cookies.clear()
    # The old cookie no longer opens anything even if replayed.
    session = out.request.headers["cookie"].split("hub_staff_session=")[1].split(";")[0]
    client.cookies.set("hub_staff_session", session)
    assert (await client.get("/ui/acme/flows")).status_code == 303


async def test_members_land_where_their_permissions_are(hub, hub_env, signed_in):
    editor = await signed_in("ed@example.com", ["workbench:edit", "customer_center:edit"])
    assert (await editor.get("/ui/")).headers["location"] == "/ui/acme/"
    assert (await editor.get("/ui/acme/")).headers["location"] == "/ui/acme/flows"
    support = await signed_in("sam@example.com", ["customer_center:view"])
    assert (await support.get("/ui/acme/")).headers["location"] == "/ui/acme/customers"
    # A Customer-Center-only member asking for a Workbench page is sent to the Customer Center.
    assert (await support.get("/ui/acme/flows")).headers["location"] == "/ui/acme/customers"


async def test_permissions_are_per_environment(hub, hub_env, signed_in):
    await environments.create_environment(hub.db, "other")
    member = await signed_in("ana@example.com", ["workbench:admin"], ["acme"])
    refused = await member.get("/ui/other/flows")
    assert refused.status_code == 403
    assert "workbench:view" in refused.text and "other" in refused.text
    assert (await member.get("/ui/other/")).status_code == 403
    everywhere = await signed_in("root@example.com", ["workbench:admin"], ["*"])
    chooser = await everywhere.get("/ui/")
    assert chooser.status_code == 200
    assert 'href="/ui/acme/"' in chooser.text and 'href="/ui/other/"' in chooser.text


async def test_pages_send_security_headers(hub_env, ui_client):
    page = await ui_client().get("/ui/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


async def test_static_files_are_served_with_etags(hub_env, ui_client):
    client = ui_client()
    js = await client.get("/ui/static/htmx.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    again = await client.get("/ui/static/htmx.min.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    assert (await client.get("/ui/static/..%2Fstaff.py")).status_code == 404
    assert (await client.get("/ui/static/nothing.js")).status_code == 404


def test_passwords_are_hashed_with_scrypt_and_checked_in_constant_time() -> None:
    stored = staff_service.hash_password("a long enough password")
    assert stored.startswith("scrypt$16384$8$1$")
    assert staff_service.check_password("a long enough password", stored)
    assert not staff_service.check_password("a long enough passworD", stored)
    assert not staff_service.check_password("x", "garbage")
    assert not staff_service.check_password("x", None)


async def test_groups_and_members_are_validated(hub: Any, hub_env) -> None:
    with pytest.raises(staff_service.StaffError, match="unknown permission"):
        await staff_service.save_group(hub, "g", ["workbench:everything"], ["acme"])
    await staff_service.save_group(hub, "g", ["workbench:view"], ["acme"])
    with pytest.raises(staff_service.StaffError, match="at least 12"):
        await staff_service.create_staff(hub, "a@example.com", password="short", groups=["g"])
    with pytest.raises(staff_service.StaffError, match="no group named"):
        await staff_service.create_staff(hub, "a@example.com", password=PASSWORD, groups=["nope"])
    with pytest.raises(staff_service.StaffError, match="not an email"):
        await staff_service.create_staff(hub, "a-example.com", password=PASSWORD, groups=["g"])
    await staff_service.create_staff(hub, "A@Example.com", password=PASSWORD, groups=["g"])
    with pytest.raises(staff_service.StaffError, match="already exists"):
        await staff_service.create_staff(hub, "a@example.com", password=PASSWORD, groups=["g"])
    member = await staff_service.authenticate(hub, "a@EXAMPLE.com", PASSWORD)
    assert member is not None and member.can("workbench:view", "acme")
    assert not member.can("workbench:edit", "acme") and not member.can("workbench:view", "other")


def test_higher_permissions_imply_lower_ones() -> None:
    assert staff_service.expand(["workbench:admin"]) == {
        "workbench:admin", "workbench:edit", "workbench:view"}
    assert staff_service.expand(["customer_center:edit"]) == {"customer_center:edit", "customer_center:view"}
