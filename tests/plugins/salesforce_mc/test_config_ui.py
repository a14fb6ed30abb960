"""The configuration UI in a real browser (Debian's Chromium, driven by Playwright).

A test page on another origin (``http://jb.test``) plays Journey Builder: it loads Hub's
``index.html`` in an iframe and answers its Postmonger messages (``ready`` → ``initActivity`` with
the official example's activity; ``requestSchema`` → ``requestedSchema``; ``requestTokens`` →
``requestedTokens``), then records the ``updateActivity`` the UI sends on Done. The screenshot
of the UI is docs/sfmc-config-ui.png.

Without Chromium these tests skip, unless ``HUB_TEST_REQUIRE_BROWSER=1``, which makes them fail.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub_plugins.salesforce_mc import bindings
from tests.plugins.salesforce_mc.conftest import INIT_ACTIVITY, Journey

playwright_api = pytest.importorskip("playwright.async_api")

JB_ORIGIN = "http://jb.test"
REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "docs" / "sfmc-config-ui.png"
# Tests leave the repository as they found it: the screenshot in docs/ is refreshed only when
# asked (HUB_TEST_UPDATE_SCREENSHOTS=1 ./scripts/test tests/plugins/salesforce_mc).
UPDATE_SCREENSHOT = os.environ.get("HUB_TEST_UPDATE_SCREENSHOTS") == "1"
# A public page framing a loopback Hub: Chromium's private-network checks would refuse what a
# real Journey Builder framing a real Hub never meets.
BROWSER_FLAGS = ["--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
                 "PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks"]
SCHEMA = {"schema": [
    {"key": "Event.DEAudience-835d6d25.Amount", "name": "Amount", "type": "Number"},
    {"key": "Event.DEAudience-835d6d25.Email", "name": "Email", "type": "EmailAddress"}]}


def _chromium() -> str | None:
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = _chromium()
    if executable is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable,
                                                    args=["--no-sandbox", "--disable-gpu", *BROWSER_FLAGS])
        try:
            yield launched
        finally:
            await launched.close()


def journey_builder_page(ui_url: str, activity: dict[str, Any]) -> str:
    """Journey Builder's side of Postmonger: JSON {e, a1, ...} messages through postMessage."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Journey Builder</title>
<style>body {{ margin: 0; }} iframe {{ border: 0; width: 720px; height: 560px; }}</style></head>
<body><iframe id="activity" src="{ui_url}"></iframe>
<script>
  window.jbEvents = [];
  const frame = document.getElementById("activity");
  const send = (e, ...args) => {{
    const message = {{e}};
    args.forEach((value, i) => {{ message["a" + (i + 1)] = value; }});
    frame.contentWindow.postMessage(JSON.stringify(message), "*");
  }};
  window.addEventListener("message", (event) => {{
    if (event.source !== frame.contentWindow) return;
    const data = JSON.parse(event.data);
    window.jbEvents.push(data);
    if (data.e === "ready") send("initActivity", {json.dumps(activity)});
    if (data.e === "requestSchema") send("requestedSchema", {json.dumps(SCHEMA)});
    if (data.e === "requestTokens") send("requestedTokens", {{fuel2token: "x", token: "y"}});
  }});
</script></body></html>"""


async def events(page: Any, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate(f"window.jbEvents.filter(e => e.e === {name!r})")
    return found


@pytest.fixture
def journey_server(hub_client: Any, hub_env: Any, hub_server: str) -> Journey:
    return Journey(hub_client, hub_env)


async def test_choose_a_flow_map_a_variable_and_done_sends_update_activity(
        browser, journey_server, hub_server, hub, hub_env):
    journey = journey_server
    settings = await journey.install()
    await journey.publish()
    activity = copy.deepcopy(INIT_ACTIVITY)
    activity["arguments"]["execute"]["inArguments"] = []
    activity["metaData"]["isConfigured"] = False
    ui_url = hub_server + "/" + settings["activityUrl"].split("/", 3)[3] + "/index.html"

    context = await browser.new_context(viewport={"width": 720, "height": 560})
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    await page.route(f"{JB_ORIGIN}/**", lambda route: route.fulfill(
        status=200, content_type="text/html; charset=utf-8", body=journey_builder_page(ui_url, activity)))
    try:
        await page.goto(f"{JB_ORIGIN}/")
        ui = page.frame_locator("#activity")
        flow = ui.get_by_label("Flow", exact=True)
        await flow.locator("option[value=order]").wait_for(state="attached", timeout=10_000)
        asked = {e["e"] for e in await page.evaluate("window.jbEvents")}
        assert {"ready", "requestSchema", "requestTokens"} <= asked, console
        done = ui.get_by_role("button", name="Done")
        assert await done.is_disabled()
        await flow.select_option("order")
        amount = ui.get_by_label("amount")
        await amount.fill("{{Event.DEAudience-835d6d25.Amount}}")
        await ui.get_by_label("discount").fill("15")
        assert await done.is_enabled()
        shot = await page.locator("#activity").screenshot()
        assert shot.startswith(b"\x89PNG")
        if UPDATE_SCREENSHOT:
            SCREENSHOT.write_bytes(shot)
        await done.click()
        await page.wait_for_function("window.jbEvents.some(e => e.e === 'updateActivity')", timeout=10_000)
    finally:
        print("\n".join(console))
    [update] = await events(page, "updateActivity")
    updated = update["a1"]
    assert updated["arguments"]["execute"]["inArguments"] == [
        {"flowConfigId": "order"}, {"amount": "{{Event.DEAudience-835d6d25.Amount}}"}, {"discount": "15"}]
    assert updated["metaData"]["isConfigured"] is True
    assert updated["name"] == "Hub: Order follow-up"
    assert updated["key"] == INIT_ACTIVITY["key"]  # the rest of the activity is sent back untouched
    assert (await events(page, "setActivityDirtyState"))[-1]["a1"] is True
    # The UI also stored the arguments, so that Journey Builder's validate can be checked.
    stored = await bindings.get(hub, hub_env.id, INIT_ACTIVITY["id"])
    assert stored is not None and stored["flow_id"] == "order"
    await context.close()


async def test_the_split_ui_sends_its_flow_and_day_count(browser, journey_server, hub_server):
    journey = journey_server
    settings = await journey.install()
    await journey.publish()
    activity = {"key": "REST-9", "name": "", "metaData": {}, "arguments": {"execute": {"inArguments": [
        {"flowConfigId": ""}, {"seenWithinDays": "14"}]}}}
    ui_url = hub_server + "/" + settings["decisionUrl"].split("/", 3)[3] + "/index.html"
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(f"{JB_ORIGIN}/**", lambda route: route.fulfill(
        status=200, content_type="text/html; charset=utf-8", body=journey_builder_page(ui_url, activity)))
    await page.goto(f"{JB_ORIGIN}/")
    ui = page.frame_locator("#activity")
    flow = ui.get_by_label("Open card of flow (optional)")
    await flow.locator("option[value=order]").wait_for(state="attached", timeout=10_000)
    assert await ui.get_by_label("Seen in the app within (days)").input_value() == "14"
    await flow.select_option("order")
    await ui.get_by_role("button", name="Done").click()
    await page.wait_for_function("window.jbEvents.some(e => e.e === 'updateActivity')", timeout=10_000)
    [update] = await events(page, "updateActivity")
    assert update["a1"]["arguments"]["execute"]["inArguments"] == [{"flowConfigId": "order"},
                                                                   {"seenWithinDays": "14"}]
    await context.close()
