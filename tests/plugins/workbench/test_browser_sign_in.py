"""Signing in and out in a real browser (Debian's Chromium)."""

from __future__ import annotations

from tests.plugins.workbench.conftest import PASSWORD, browser_sign_in


async def test_sign_in_lands_on_the_page_asked_for_and_sign_out_ends_it(hub_env, hub_server, hub_browser,
                                                                          make_staff):
    await make_staff("ana@example.com", ["workbench:view", "customer_center:view"])
    page = await browser_sign_in(hub_browser, hub_server, "ana@example.com", next="/ui/acme/customers")
    assert page.url.endswith("/ui/acme/customers")
    await page.get_by_role("link", name="Workbench Flows").click()
    await page.wait_for_url("**/ui/acme/flows")
    assert await page.get_by_role("heading", name="Flows").is_visible()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/ui/login")
    await page.goto(f"{hub_server}/ui/acme/flows")
    assert "/ui/login" in page.url


async def test_a_wrong_password_shows_the_reason_next_to_the_form(hub_env, hub_server, hub_browser,
                                                                   make_staff):
    await make_staff("ana@example.com", ["workbench:view"])
    page = await (await hub_browser.new_context()).new_page()
    await page.goto(f"{hub_server}/ui/login")
    await page.get_by_label("Email").fill("ana@example.com")
    await page.get_by_label("Password").fill(PASSWORD + "x")
    await page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "do not match" in await alert.inner_text()
    assert await page.get_by_label("Email").input_value() == "ana@example.com"


async def test_a_customer_center_only_member_lands_in_and_is_kept_to_the_customer_center(
        hub_env, hub_server, hub_browser, make_staff):
    await make_staff("sam@example.com", ["customer_center:edit"])
    page = await browser_sign_in(hub_browser, hub_server, "sam@example.com")
    assert page.url.endswith("/ui/acme/customers")
    nav = page.get_by_role("navigation", name="Sections")
    links = [" ".join(text.split()) for text in await nav.get_by_role("link").all_inner_texts()]
    assert "Customer Center Customers" in links
    assert not [link for link in links if link.startswith("Workbench")], links
    await page.goto(f"{hub_server}/ui/acme/flows")
    assert page.url.endswith("/ui/acme/customers")
