"""Customer search in a real browser (Debian's Chromium): results follow the typing, the URL
follows the search, Enter on an exact user id and a click open the customer."""

from __future__ import annotations

from playwright.async_api import expect

from hub.services import customers as customer_service
from tests.plugins.workbench.conftest import browser_sign_in


async def test_typing_a_name_shows_results_live_and_a_click_opens_the_customer(
        hub, hub_env, hub_server, hub_browser, make_staff):
    await customer_service.upsert_customers(hub, "acme", [
        {"userId": "cust-1", "fields": {"name": "Ann Archer", "email": "ann@example.com"}},
        {"userId": "cust-2", "fields": {"name": "Bob Baker", "email": "bob@example.com"}},
        {"userId": "cust-3", "fields": {"name": "Annika Smith", "email": "annika@example.com"}},
    ])
    await make_staff("sam@example.com", ["customer_center:view"])
    page = await browser_sign_in(hub_browser, hub_server, "sam@example.com", next="/ui/acme/customers")
    results = page.locator("#search-results")
    rows = results.locator("tbody tr")
    assert await rows.count() == 3  # everyone, before typing
    box = page.get_by_label("Search customers")
    await box.press_sequentially("bob b")
    await results.get_by_role("link", name="cust-2").wait_for()
    await expect(rows).to_have_count(1)
    assert "q=bob%20b" in page.url  # the URL follows the search (a reload shows the same)
    assert await page.locator("h1").inner_text() == "Find a customer"  # the page was not reloaded
    await box.fill("ann")
    await expect(rows).to_have_count(2)
    assert await results.get_by_role("link", name="cust-3").is_visible()
    await page.get_by_label("Search in").select_option("email")
    await page.wait_for_url("**field=email**")
    await results.get_by_role("link", name="cust-1").click()
    await page.wait_for_url("**/ui/acme/customers/cust-1")
    await page.go_back()
    await page.get_by_label("Search in").select_option("any")
    await page.get_by_label("Search customers").fill("cust-3")
    await page.get_by_label("Search customers").press("Enter")
    await page.wait_for_url("**/ui/acme/customers/cust-3")
