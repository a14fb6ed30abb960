"""The Customer Center in a real browser (Debian's Chromium): the customer page, its state tabs
and previews, and sending a flow whose card then appears in the customer's feed.

The screenshots docs/customer-center.png and docs/customer-center-send.png are rewritten only
when asked (``HUB_TEST_UPDATE_SCREENSHOTS=1``), so a test run leaves the repository unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

from hub.services import cards as card_service
from hub_plugins.workbench import staff as staff_service
from tests.plugins.workbench.conftest import browser_sign_in
from tests.plugins.workbench.test_customer_center import customer_world

REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "docs" / "customer-center.png"
SEND_SCREENSHOT = REPO / "docs" / "customer-center-send.png"
UPDATE_SCREENSHOTS = os.environ.get("HUB_TEST_UPDATE_SCREENSHOTS") == "1"
VIEWPORT = {"width": 1280, "height": 900}


async def test_a_view_member_sees_the_feed_by_state_with_previews_and_no_send_button(
    hub, hub_env, run_jobs, hub_server, hub_browser, make_staff
):
    cards = await customer_world(hub, run_jobs)
    await make_staff("vi@example.com", ["customer_center:view"])
    page = await browser_sign_in(
        hub_browser, hub_server, "vi@example.com", next="/ui/acme/customers/u1", viewport=VIEWPORT
    )
    assert await page.get_by_role("heading", name="Ada Lovelace").is_visible()
    assert await page.get_by_role("link", name="Send flow").count() == 0
    active = page.locator(f'li.cc-card[data-card-id="{cards["active"]["cardInstanceId"]}"]')
    await active.locator(".hub-card").wait_for()  # rendered by the SDK's renderPreview
    assert "Active note" in await active.locator(".hub-card").inner_text()
    stream = active.locator("[data-hub-theme]")
    assert await stream.get_attribute("data-hub-theme") == "light"
    await page.get_by_label("Dark").check()
    await page.wait_for_function(
        "document.querySelector('.cc-preview [data-hub-theme]').getAttribute('data-hub-theme') === 'dark'"
    )
    # State tabs: an htmx swap of the card list, and the address follows.
    tabs = page.get_by_role("navigation", name="Card states")
    await tabs.get_by_role("link", name="Completed").click()
    await page.wait_for_url("**/ui/acme/customers/u1?state=completed&container=default")
    completed = page.locator(f'li.cc-card[data-card-id="{cards["completed"]["cardInstanceId"]}"]')
    await completed.locator(".hub-card").wait_for()
    assert await page.locator(f'li.cc-card[data-card-id="{cards["active"]["cardInstanceId"]}"]').count() == 0
    assert await tabs.get_by_role("link", name="Completed").get_attribute("aria-current") == "page"
    assert await tabs.get_by_role("link", name="Active").get_attribute("aria-current") is None
    assert await completed.locator("[data-hub-theme]").get_attribute("data-hub-theme") == "dark"
    assert "Phone call" in await completed.locator(".cc-inputs").inner_text()
    await page.get_by_label("Light").check()
    if UPDATE_SCREENSHOTS:
        SCREENSHOT.write_bytes(await page.locator("section", has=page.locator("#cc-cards")).screenshot())
    await tabs.get_by_role("link", name="Snoozed").click()
    await page.locator(f'li.cc-card[data-card-id="{cards["snoozed"]["cardInstanceId"]}"]').wait_for()
    await page.go_back()
    await page.wait_for_url("**state=completed**")
    await page.get_by_label("Stream container").select_option("offers")
    await page.wait_for_url("**state=completed&container=offers")
    await page.get_by_text("No completed cards in this container.").wait_for()
    await tabs.get_by_role("link", name="Active").click()
    await page.locator(f'li.cc-card[data-card-id="{cards["offer"]["cardInstanceId"]}"]').wait_for(
        state="attached"
    )
    await page.context.close()


async def test_an_edit_member_sends_a_flow_and_its_card_appears_in_the_feed(
    hub, hub_env, run_jobs, hub_server, hub_browser, hub_worker, make_staff
):
    await customer_world(hub, run_jobs)
    await make_staff("ed@example.com", ["customer_center:edit"])
    page = await browser_sign_in(
        hub_browser, hub_server, "ed@example.com", next="/ui/acme/customers/u1", viewport=VIEWPORT
    )
    await page.get_by_role("link", name="Send flow").click()
    await page.wait_for_url("**/ui/acme/customers/u1/send")
    await page.get_by_role("link", name="Choose Resolve case").click()
    await page.get_by_label("caseId").fill("C-2024")
    await page.get_by_label("amount").fill("42")
    await page.get_by_label("due").fill("2026-05-01")
    await page.get_by_label("urgent").check()
    if UPDATE_SCREENSHOTS:
        SEND_SCREENSHOT.write_bytes(await page.screenshot(full_page=True))
    await page.get_by_label("caseId").fill("")
    await page.get_by_role("button", name="Send to u1").click()
    await page.locator("#var-caseId-error").wait_for()
    assert "is required" in await page.locator("#var-caseId-error").inner_text()
    assert await page.get_by_label("amount").input_value() == "42", "what was typed is kept"
    assert await page.get_by_label("urgent").is_checked()
    await page.get_by_label("caseId").fill("C-2024")
    await page.get_by_role("button", name="Send to u1").click()
    await page.wait_for_url("**/ui/acme/customers/u1?sent=cc-*")
    assert "Flow sent." in await page.get_by_role("status").first.inner_text()
    new_card = page.locator(".cc-preview .hub-card", has_text="Tell us more, C-2024")
    await new_card.wait_for(timeout=20_000)  # the cards refresh until the worker has sent it
    [entry] = await staff_service.audit_log(hub, "acme", target="u1")
    assert entry["detail"]["variables"] == {
        "caseId": "C-2024",
        "amount": 42,
        "due": "2026-05-01",
        "urgent": True,
    }
    assert "ed@example.com" in await page.locator("#cc-audit-title + .wb-scroll table").inner_text()
    sent = await card_service.list_cards(hub, "acme", invocation_id=entry["detail"]["flowInvocationId"])
    assert [c["status"] for c in sent["cards"]] == ["active"]
    await page.context.close()
