"""Every staff page fits a phone's width (375 px) in a real browser (Debian's Chromium): wide tables
scroll inside their own box, forms and the navigation wrap, and the page never scrolls sideways.
The same pages at 1280 px do not scroll sideways either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hub.services import analytics as analytics_service
from hub.services import flows as flow_service
from hub_plugins.webhooks import outbound_service
from tests.plugins.workbench.conftest import browser_sign_in
from tests.plugins.workbench.test_customer_center import customer_world

REPO = Path(__file__).resolve().parents[3]
FRAUD_ALERT = json.loads((REPO / "examples" / "flows" / "fraud_alert.json").read_text())

# Each staff page, as an admin with both sections' edit rights sees it (the most controls).
PAGES = [
    "/ui/acme/flows",
    "/ui/acme/flows/fraud-alert",
    "/ui/acme/workbench/customers",
    "/ui/acme/analytics",
    "/ui/acme/settings/webhooks",
    "/ui/acme/settings/push-fcm",
    "/ui/acme/settings/push-apns",
    "/ui/acme/settings/marketo",
    "/ui/acme/settings/sfmc",
    "/ui/acme/customers?q=ada",
    "/ui/acme/customers/u1",
    "/ui/acme/customers/u1?state=completed",
    "/ui/acme/customers/u1/send",
    "/ui/acme/customers/u1/send?flow=resolve",
    "/ui/acme/audit",
]

OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > width + 1)
    .filter((el) => !el.closest('.wb-scroll, .skip'))
    .slice(0, 5)
    .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.className ? '.' + el.className : ''));
  return {scrollWidth: document.documentElement.scrollWidth, width, wide};
}"""


@pytest.fixture
def hub_settings(hub_settings: Any) -> Any:
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)  # a webhook on loopback


async def staff_world(hub: Any, run_jobs: Any) -> None:
    """Customer u1 with cards in every state and analytics events; a flow with a long definition;
    a webhook subscription; staff audit entries."""
    await customer_world(hub, run_jobs)
    await flow_service.create_flow(hub, "acme", FRAUD_ALERT, "fraud-alert")
    await flow_service.publish(hub, "acme", "fraud-alert")
    await analytics_service.record_custom_events(hub, "acme", [
        {"userId": "u1", "name": "opened-statement-with-a-long-name",
         "properties": {"statementId": "ST-2024-0000000042", "channel": "mobile-banking-app"}}])
    await outbound_service.create_subscription(hub, "acme", {
        "url": "http://127.0.0.1:9/a-rather-long-path/to/the/crm/webhook/endpoint", "description": "CRM"})
    await run_jobs()


@pytest.mark.parametrize("width", [375, 1280])
async def test_no_staff_page_scrolls_sideways(hub, hub_env, run_jobs, hub_server, hub_browser, make_staff,
                                              width):
    await staff_world(hub, run_jobs)
    await make_staff("ada@example.com", ["workbench:admin", "customer_center:edit"])
    page = await browser_sign_in(hub_browser, hub_server, "ada@example.com", next="/ui/acme/flows",
                                 viewport={"width": width, "height": 800})
    overflowing = {}
    for path in PAGES:
        response = await page.goto(f"{hub_server}{path}")
        assert response is not None and response.status == 200, path
        await page.wait_for_load_state("networkidle")
        measured = await page.evaluate(OVERFLOW)
        if measured["scrollWidth"] > measured["width"]:
            overflowing[path] = measured
    assert not overflowing, json.dumps(overflowing, indent=1)
    await page.context.close()
