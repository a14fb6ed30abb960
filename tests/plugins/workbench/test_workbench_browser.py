"""The Workbench in a real browser (Debian's Chromium): the editor, card previews, the analytics tail."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hub.services import analytics as analytics_service
from hub.services import flows as flow_service
from tests.plugins.workbench.conftest import browser_sign_in

REPO = Path(__file__).resolve().parents[3]
# Tests leave the repository as they found it: the screenshots in docs/ are refreshed only when
# asked (HUB_TEST_UPDATE_SCREENSHOTS=1 ./scripts/test tests/plugins/workbench/test_workbench_browser.py).
UPDATE_SCREENSHOTS = os.environ.get("HUB_TEST_UPDATE_SCREENSHOTS") == "1"
FRAUD_ALERT = json.loads((REPO / "examples" / "flows" / "fraud_alert.json").read_text())
VIEWPORT = {"width": 1280, "height": 900}


async def test_edit_with_an_error_fix_publish_and_preview(hub, hub_env, hub_server, hub_browser, make_staff):
    await flow_service.create_flow(hub, "acme", FRAUD_ALERT, "fraud-alert")
    await flow_service.publish(hub, "acme", "fraud-alert")
    await flow_service.create_flow(hub, "acme", {**FRAUD_ALERT, "name": "Fraud alert (EU)"}, "fraud-alert-eu")
    await make_staff("eve@example.com", ["workbench:edit"])
    page = await browser_sign_in(hub_browser, hub_server, "eve@example.com", next="/ui/acme/flows",
                                 viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert await page.get_by_role("heading", name="Flows").is_visible()
    switch = page.get_by_role("switch", name="Offer Fraud alert (EU) in the Customer Center")
    assert await switch.get_attribute("aria-checked") == "false"
    await switch.click()
    await page.locator('#flow-fraud-alert-eu [role=switch][aria-checked="true"]').wait_for()
    assert (await flow_service.get_flow(hub, "acme", "fraud-alert-eu"))["customerCenterEnabled"] is True
    if UPDATE_SCREENSHOTS:
        await page.screenshot(path=str(REPO / "docs" / "workbench-flows.png"), full_page=True)
    await page.get_by_role("link", name="Fraud alert (EU)").click()
    await page.wait_for_url("**/ui/acme/flows/fraud-alert-eu")

    # The preview of the first template, drawn by the SDK's renderer.
    preview = page.locator(".wb-preview").first
    await preview.get_by_role("heading", name="Did you make this payment?", exact=True).wait_for()
    assert await preview.locator("article").count() == 1
    await page.get_by_label("Preview theme").select_option("dark")
    assert await preview.locator('[data-hub-theme="dark"]').count() == 1
    await page.get_by_label("Preview theme").select_option("light")

    editor = page.get_by_label("Flow JSON")
    definition = json.loads(await editor.input_value())
    definition["steps"][0]["next"] = "nowhere"
    await editor.fill(json.dumps(definition, indent=2))
    await page.get_by_role("button", name="Save draft").click()
    problems = page.locator("#definition-errors [role=alert]")
    await problems.wait_for()
    text = await problems.inner_text()
    assert "steps[0].next" in text and "nowhere" in text
    assert "nowhere" in await page.get_by_label("Flow JSON").input_value()

    definition["steps"][0]["next"] = "await_answer"
    definition["cardTemplates"][0]["elements"][0]["text"] = "Was this payment yours?"
    await page.get_by_label("Flow JSON").fill(json.dumps(definition, indent=2))
    await page.get_by_role("button", name="Save draft").click()
    await page.get_by_role("status").filter(has_text="Draft v1 saved").wait_for()
    await page.locator(".wb-preview").first.get_by_role("heading", name="Was this payment yours?",
                                                         exact=True).wait_for()
    if UPDATE_SCREENSHOTS:
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(REPO / "docs" / "workbench-editor.png"), full_page=True)
    await page.get_by_role("button", name="Publish draft v1").click()
    await page.get_by_role("status").filter(has_text="Version 1 published").wait_for()
    detail = await flow_service.get_flow(hub, "acme", "fraud-alert-eu")
    assert detail["publishedVersion"] == 1
    headline = detail["published"]["definition"]["cardTemplates"][0]["elements"][0]
    assert headline["text"] == "Was this payment yours?"
    assert detail["customerCenterEnabled"] is True  # the draft kept the switch's choice
    assert errors == []


async def test_the_analytics_debugger_shows_new_events_live(hub, hub_env, hub_server, hub_browser,
                                                             make_staff):
    await analytics_service.record_custom_events(hub, "acme", [{"userId": "ana", "name": "opened-app"}])
    await make_staff("val@example.com", ["workbench:view"])
    page = await browser_sign_in(hub_browser, hub_server, "val@example.com", next="/ui/acme/analytics")
    events = page.locator("#wb-events > li")
    assert await events.count() == 1
    await analytics_service.record_custom_events(hub, "acme", [{"userId": "bob", "name": "paid-invoice"}])
    newest = events.first.filter(has_text="paid-invoice")
    await newest.wait_for(timeout=10_000)
    assert await events.count() == 2
    assert "bob" in await newest.inner_text()
    # Filtered by user: only that user's new events arrive.
    await page.get_by_label("User id").fill("ana")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url("**/ui/acme/analytics?*user=ana*")
    assert await events.count() == 1
    await analytics_service.record_custom_events(hub, "acme", [
        {"userId": "bob", "name": "ignored"}, {"userId": "ana", "name": "closed-app"}])
    await events.first.filter(has_text="closed-app").wait_for(timeout=10_000)
    assert await events.count() == 2
    assert await page.locator("#wb-events").get_by_text("ignored").count() == 0
