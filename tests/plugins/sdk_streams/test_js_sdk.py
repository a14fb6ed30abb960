"""The JavaScript SDK in a real browser (Debian's Chromium, driven by Playwright).

Hub is served by uvicorn on a loopback port with a worker running in the background, as in
production. The app page lives on another origin (``http://app.test``, answered by Playwright),
so the SDK loads and calls Hub cross-origin exactly as on a customer's site.

The browser is Debian's ``chromium`` (Playwright cannot download its own here). Without it
these tests skip, unless ``HUB_TEST_REQUIRE_BROWSER=1`` (set by CI), which makes them fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hub.dev import DEMO_FLOW_FILE
from hub_plugins.sdk_streams import demo
from hub_plugins.sdk_streams.testing import Signer
from tests.engine.conftest import Flows

playwright_api = pytest.importorskip("playwright.async_api")

APP_ORIGIN = "http://app.test"
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

EVERYTHING_FLOW: dict[str, Any] = {
    "name": "Everything a card can hold",
    "cardTemplates": [{"id": "all", "name": "All elements", "priority": 8, "elements": [
        {"type": "headline", "text": "Confirm your details"},
        {"type": "text", "text": "We need a few things from you."},
        {"type": "image", "url": PIXEL, "alt": "Bank logo"},
        {"type": "input", "inputType": "text", "id": "name", "label": "Full name", "required": True,
         "placeholder": "As on your card", "validation": {"minLength": 2}},
        {"type": "input", "inputType": "number", "id": "amount", "label": "Amount",
         "validation": {"min": 1, "max": 100, "integer": True}},
        {"type": "input", "inputType": "date", "id": "when", "label": "Date of payment"},
        {"type": "input", "inputType": "checkbox", "id": "channels", "label": "Contact me by",
         "options": [{"value": "sms", "label": "Text message"}, {"value": "email", "label": "Email"}]},
        {"type": "input", "inputType": "dropdown", "id": "reason", "label": "Reason", "required": True,
         "options": [{"value": "lost", "label": "Card lost"}, {"value": "stolen", "label": "Card stolen"}]},
        {"type": "input", "inputType": "toggle", "id": "agree", "label": "Block my card now"},
        {"type": "button", "label": "Send", "action": "submit"},
        {"type": "button", "label": "Later", "action": "snooze"},
        {"type": "button", "label": "Read more", "action": "link", "url": "https://bank.example/help"},
        {"type": "button", "label": "Call me", "action": "custom", "value": "callback"},
        {"type": "button", "label": "No thanks", "action": "dismiss"}]}],
    "steps": [{"id": "send", "type": "card", "template": "all"}],
}

NOTE_FLOW: dict[str, Any] = {
    "name": "Note",
    "variables": [{"name": "title", "type": "string", "default": "Hello"}],
    "cardTemplates": [{"id": "note", "name": "Note", "elements": [
        {"type": "headline", "text": "{{variables.title}}"},
        {"type": "button", "label": "Snooze an hour", "action": "snooze", "snoozeFor": "PT1H"},
        {"type": "button", "label": "Got it", "action": "dismiss"}]}],
    "steps": [{"id": "send", "type": "card", "template": "note"}],
}


# The app page is on a made-up public origin and Hub on loopback; Chromium refuses a public page
# access to a more private address space (Private/Local Network Access), which a real site
# calling a real Hub never meets.
BROWSER_FLAGS = ["--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
                 "PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks"]


def _chromium() -> str | None:
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.fixture
def hub_settings(hub_settings: Any) -> Any:
    return msgspec.structs.replace(hub_settings, cors_allow_origins=(APP_ORIGIN,))


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


def app_page_html(server: str, env: str, token: str, container: str = "default") -> str:
    options = json.dumps({"baseUrl": server, "env": env, "container": container})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bank app</title></head>
<body><div id="cards"></div>
<script type="module">
  import {{ createStream }} from "{server}/sdk/hub-sdk.js";
  window.sdkEvents = [];
  window.hubToken = {json.dumps(token)};
  window.stream = createStream({{...{options}, element: document.getElementById("cards"),
    getToken: async () => window.hubToken,
    onEvent: (event) => window.sdkEvents.push(event)}});
</script></body></html>"""


OpenApp = Callable[..., Awaitable[Any]]


@pytest.fixture
async def open_app(browser: Any, hub_server: str, hub_env: Any, sdk_signer: Signer) -> AsyncIterator[OpenApp]:
    """``page = await open_app("kim")``: the bank's app page showing kim's stream."""
    contexts = []
    console: list[str] = []

    async def open_(user: str, *, color_scheme: str = "light", before: Any = None) -> Any:
        context = await browser.new_context(color_scheme=color_scheme)
        contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        html = app_page_html(hub_server, hub_env.id, sdk_signer.token(user))
        await page.route(f"{APP_ORIGIN}/**", lambda route: route.fulfill(
            status=200, content_type="text/html; charset=utf-8", body=html))
        if before is not None:
            await before(page)
        await page.goto(f"{APP_ORIGIN}/")
        return page

    yield open_
    print("\n".join(console))  # shown when a test fails
    for context in contexts:
        await context.close()


@pytest.fixture
def flows(hub_client: Any, hub_env: Any, run_jobs: Any, hub: Any) -> Flows:
    return Flows(hub_client, hub_env, run_jobs, hub)


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (the server side settles asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


async def server_events(flows: Flows, user: str, name: str) -> list[dict[str, Any]]:
    return [e for e in await flows.events(userId=user) if e["analyticsEvent"] == name]


async def live(page: Any) -> None:
    try:
        await page.wait_for_selector('[data-hub-connection="live"]', state="attached", timeout=10_000)
    except playwright_api.TimeoutError:
        events = await page.evaluate("JSON.stringify(window.sdkEvents || [])")
        raise AssertionError(f"the stream did not go live; the SDK said: {events}") from None


async def test_a_card_appears_live_renders_every_element_accessibly_and_submits(
        open_app, flows, hub_worker):
    await flows.publish("everything", EVERYTHING_FLOW)
    page = await open_app("kim")
    await live(page)
    await page.get_by_text("You're all caught up.").wait_for()

    card = page.get_by_role("article", name="Confirm your details")
    await flows.start("everything", target={"usersById": ["kim"]})
    accepted = time.perf_counter()
    await card.wait_for(timeout=10_000)
    shown_after = time.perf_counter() - accepted
    assert shown_after < 1.0, f"the card took {shown_after:.2f} s to appear"  # live, no reload
    [stored] = await flows.cards(userId="kim")
    assert await card.get_attribute("data-card-id") == stored["cardInstanceId"]

    # Every element, reachable by its role and accessible name.
    assert await card.get_by_role("heading", name="Confirm your details").is_visible()
    assert await card.get_by_text("We need a few things from you.").is_visible()
    assert await card.get_by_role("img", name="Bank logo").is_visible()
    name = card.get_by_role("textbox", name="Full name")
    amount = card.get_by_role("spinbutton", name="Amount")
    reason = card.get_by_role("combobox", name="Reason")
    toggle = card.get_by_role("switch", name="Block my card now")
    assert await name.get_attribute("placeholder") == "As on your card"
    assert await card.get_by_label("Date of payment").get_attribute("type") == "date"
    group = card.get_by_role("group", name="Contact me by")
    assert await group.get_by_role("checkbox", name="Text message").is_visible()
    assert await card.get_by_role("link", name="Read more").get_attribute("href") == "https://bank.example/help"
    for label in ("Send", "Later", "Call me", "No thanks", "Useful", "Not useful"):
        assert await card.get_by_role("button", name=label, exact=True).is_visible(), label

    # Required fields are checked before anything is sent, and the error is announced.
    await card.get_by_role("button", name="Send").click()
    assert await name.get_attribute("aria-invalid") == "true"
    described = await name.get_attribute("aria-describedby")
    assert await page.locator(f"#{described}").inner_text() == "This field is required."
    await amount.fill("250")
    await card.get_by_role("button", name="Send").click()
    amount_error = page.locator(f"#{await amount.get_attribute('aria-describedby')}")
    assert "100 or less" in await amount_error.inner_text()
    assert (await flows.cards(userId="kim"))[0]["status"] == "active"

    # A custom button hands the values to the app instead of acting.
    await name.fill("Kim Lee")
    await card.get_by_role("button", name="Call me").click()
    custom = await page.evaluate("window.sdkEvents.filter(e => e.type === 'custom-action')")
    assert custom[0]["value"] == "callback" and custom[0]["values"]["name"] == "Kim Lee"

    await amount.fill("42")
    await card.get_by_label("Date of payment").fill("2026-11-20")
    await group.get_by_role("checkbox", name="Email").check()
    await reason.select_option("stolen")
    await toggle.check()
    await card.get_by_role("button", name="Send").click()
    await card.wait_for(state="detached", timeout=10_000)
    await page.get_by_text("You're all caught up.").wait_for()

    [done] = await flows.cards(userId="kim")
    assert done["status"] == "completed"
    assert done["values"] == {"name": "Kim Lee", "amount": 42, "when": "2026-11-20",
                              "channels": ["email"], "reason": "stolen", "agree": True}
    completed = await eventually(lambda: server_events(flows, "kim", "card-completed"))
    assert completed[0]["properties"]["submittedValues"] == done["values"]
    assert completed[0]["cardContext"]["cardInstanceId"] == stored["cardInstanceId"]
    # What the SDK reported: initialised, the stream shown, the card displayed exactly once.
    for name_ in ("sdk-initialized", "stream-displayed"):
        assert await eventually(lambda n=name_: server_events(flows, "kim", n)), name_
    displayed = await eventually(lambda: server_events(flows, "kim", "card-displayed"))
    assert [e["cardContext"]["cardInstanceId"] for e in displayed] == [stored["cardInstanceId"]]
    assert displayed[0]["sdkContext"]["platform"] == "Web"
    assert displayed[0]["streamContext"]["streamId"] == "default"


async def test_dismiss_snooze_and_vote_act_on_the_card_and_cards_keep_priority_order(
        open_app, flows, hub_worker):
    await flows.publish("note", NOTE_FLOW)
    for count, title in enumerate(("Low", "Second"), start=1):  # one after the other: "Second" is newer
        await flows.start("note", target={"usersById": ["ana"]}, payload={"variables": {"title": title}})
        assert await eventually(lambda n=count: _has_cards(flows, "ana", n))
    page = await open_app("ana")
    await live(page)
    articles = page.get_by_role("article")
    await eventually(lambda: _count(articles, 2))
    # Same priority: the most recent first.
    assert await articles.nth(0).get_attribute("aria-posinset") == "1"
    assert [await articles.nth(i).get_by_role("heading").inner_text() for i in range(2)] == ["Second", "Low"]

    second = page.get_by_role("article", name="Second")
    useful = second.get_by_role("button", name="Useful", exact=True)
    await useful.click()
    assert await eventually(lambda: useful.get_attribute("aria-pressed")) == "true"
    assert await eventually(lambda: server_events(flows, "ana", "card-voted-up"))
    low = page.get_by_role("article", name="Low")
    await low.get_by_role("button", name="Not useful").click()
    await low.get_by_label("What was wrong? (optional)").fill("Not for me")
    await low.get_by_role("button", name="Send feedback").click()
    down = await eventually(lambda: server_events(flows, "ana", "card-voted-down"))
    assert down[0]["properties"]["message"] == "Not for me"
    # The panel closes once the vote's response is in, which can be just after the event is stored.
    await low.get_by_label("What was wrong? (optional)").wait_for(state="hidden", timeout=10_000)

    await second.get_by_role("button", name="Snooze an hour").click()
    await second.wait_for(state="detached", timeout=10_000)
    await low.get_by_role("button", name="Got it").click()
    await low.wait_for(state="detached", timeout=10_000)
    statuses = {c["content"]["elements"][0]["text"]: c["status"] for c in await flows.cards(userId="ana")}
    assert statuses == {"Second": "snoozed", "Low": "dismissed"}


async def _has_cards(flows: Flows, user: str, expected: int) -> bool:
    return len(await flows.cards(userId=user)) == expected


async def _count(locator: Any, expected: int) -> bool:
    return await locator.count() == expected


async def test_a_snooze_menu_offers_times_and_can_be_cancelled_by_keyboard(open_app, flows, hub_worker):
    await flows.publish("everything", EVERYTHING_FLOW)
    await flows.start("everything", target={"usersById": ["lea"]})
    page = await open_app("lea")
    card = page.get_by_role("article", name="Confirm your details")
    await card.wait_for(timeout=10_000)
    later = card.get_by_role("button", name="Later")
    await later.click()
    assert await later.get_attribute("aria-expanded") == "true"
    menu = page.get_by_role("group", name="Snooze until")
    assert await menu.get_by_role("button", name="Tomorrow morning").is_visible()
    await page.keyboard.press("Escape")
    assert await later.get_attribute("aria-expanded") == "false"
    assert await eventually(lambda: server_events(flows, "lea", "snooze-options-displayed"))
    await later.click()
    await menu.get_by_role("button", name="1 hour").click()
    await card.wait_for(state="detached", timeout=10_000)
    [snoozed] = await flows.cards(userId="lea")
    assert snoozed["status"] == "snoozed"


async def test_without_a_socket_the_sdk_polls_and_on_reconnect_it_resumes_from_its_last_event(
        open_app, flows, hub, hub_worker):
    """The socket is refused at first: cards arrive by polling. Then it is let through and the
    SDK goes live; dropped again, it reconnects with the id of the last frame it processed."""
    hub.plugin_settings["sdk_streams"] = msgspec.structs.replace(
        hub.plugin_settings["sdk_streams"], poll_seconds=1)
    await flows.publish("note", NOTE_FLOW)
    sockets: list[Any] = []
    urls: list[str] = []
    state = {"allow": False}

    async def route_sockets(page: Any) -> None:
        async def handle(ws: Any) -> None:
            urls.append(ws.url)
            if not state["allow"]:
                await ws.close(code=1011, reason="blocked by the test")
                return
            ws.connect_to_server()
            sockets.append(ws)

        await page.route_web_socket("**/sdk/socket**", handle)

    page = await open_app("max", before=route_sockets)
    await page.get_by_text("You're all caught up.").wait_for()
    await flows.start("note", target={"usersById": ["max"]}, payload={"variables": {"title": "Polled"}})
    await page.get_by_role("article", name="Polled").wait_for(timeout=10_000)
    assert await page.locator('[data-hub-connection="live"]').count() == 0

    state["allow"] = True
    await live(page)
    await flows.start("note", target={"usersById": ["max"]}, payload={"variables": {"title": "Pushed"}})
    await page.get_by_role("article", name="Pushed").wait_for(timeout=10_000)

    await sockets[-1].close(code=1012, reason="restart")
    await page.wait_for_selector('[data-hub-connection="offline"]', state="attached", timeout=5_000)
    await flows.start("note", target={"usersById": ["max"]}, payload={"variables": {"title": "Missed"}})
    await page.get_by_role("article", name="Missed").wait_for(timeout=10_000)
    await live(page)
    assert "lastEventId=" not in urls[0]
    assert any("lastEventId=" in url for url in urls[1:]), urls


async def test_themes_light_dark_and_the_systems_choice(open_app, flows, hub_worker):
    await flows.publish("note", NOTE_FLOW)
    await flows.start("note", target={"usersById": ["sam"]})
    light = await open_app("sam", color_scheme="light")
    dark = await open_app("sam", color_scheme="dark")

    async def background(page: Any) -> str:
        card = page.get_by_role("article")
        await card.wait_for(timeout=10_000)
        return await card.evaluate("node => getComputedStyle(node).backgroundColor")

    light_bg, dark_bg = await background(light), await background(dark)
    assert light_bg == "rgb(255, 255, 255)" and dark_bg != light_bg  # "auto" follows the system
    await light.evaluate("window.stream.setTheme('dark')")
    assert await background(light) == dark_bg


async def test_an_expired_token_is_refreshed_through_get_token(open_app, flows, hub_worker, sdk_signer):
    await flows.publish("note", NOTE_FLOW)
    await flows.start("note", target={"usersById": ["eve"]}, payload={"variables": {"title": "Hi"}})

    async def expired_first(page: Any) -> None:
        await page.add_init_script(f"window.freshToken = {json.dumps(sdk_signer.token('eve'))};")

    page = await open_app("eve", before=expired_first)
    await page.get_by_role("article", name="Hi").wait_for(timeout=10_000)
    # The page's token is now refused (its key's tokens expire): the next action gets a new one.
    await page.evaluate(f"window.hubToken = {json.dumps(sdk_signer.token('eve', expires_in=-3600))};"
                        "window.stream.token = window.hubToken; window.hubToken = window.freshToken;")
    await page.get_by_role("button", name="Got it").click()
    await page.get_by_role("article", name="Hi").wait_for(state="detached", timeout=10_000)
    assert (await flows.cards(userId="eve"))[0]["status"] == "dismissed"


# --- the demo page ``hub dev`` serves ---------------------------------------------------------


@pytest.fixture
async def demo_enabled(hub: Any, hub_env: Any, flows: Flows, tmp_path: Path) -> Path:
    """What ``hub dev`` sets up: a demo key registered for the environment, the demo flow."""
    from joserfc.jwk import ECKey

    from hub_plugins.sdk_streams import auth

    key = ECKey.generate_key("P-256")
    key_file = tmp_path / "demo.pem"
    key_file.write_bytes(key.as_pem(private=True))
    await auth.add_key(hub, hub_env.id, issuer=demo.DEMO_ISSUER, audience=demo.DEMO_AUDIENCE,
                       pem=key.as_pem(private=False).decode())
    hub.plugin_settings["sdk_streams"] = msgspec.structs.replace(
        hub.plugin_settings["sdk_streams"], demo_key_file=str(key_file), demo_env=hub_env.id,
        demo_flow="fraud-alert")
    await flows.publish("fraud-alert", json.loads(DEMO_FLOW_FILE.read_text()))
    await flows.users({"userId": "demo-user", "isTestUser": True}, {"userId": "real-customer"})
    return key_file


async def test_the_demo_page_signs_in_as_the_test_user_and_shows_a_card_it_sends(
        browser, hub_server, demo_enabled, flows, hub_worker):
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
    await page.goto(f"{hub_server}/sdk/demo?user=demo-user")
    await live(page)
    await page.get_by_role("button", name="Send me a fraud alert").click()
    card = page.get_by_role("article", name="Did you make this payment?")
    await card.wait_for(timeout=10_000)
    assert await card.get_by_text("A payment of $249.99 at ACME Online").is_visible()
    await page.get_by_label("Theme").select_option("dark")
    await card.get_by_role("button", name="Not now").click()
    await card.wait_for(state="detached", timeout=10_000)
    assert (await flows.cards(userId="demo-user"))[0]["status"] == "dismissed"
    assert problems == []


async def test_the_demo_routes_do_not_exist_unless_enabled(hub_client):
    assert (await hub_client.get("/sdk/demo")).status_code == 404
    response = await hub_client.post("/sdk/demo/token", json={"userId": "demo-user"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert (await hub_client.post("/sdk/demo/send", json={"userId": "demo-user"})).status_code == 404


async def test_the_demo_signs_tokens_for_test_users_only(hub, hub_client, hub_env, demo_enabled):
    from hub_plugins.sdk_streams import auth

    issued = await hub_client.post("/sdk/demo/token", json={"userId": "demo-user"})
    assert issued.status_code == 200
    user = await auth.authenticate(hub, hub_env.id, issued.json()["token"])
    assert user.user_id == "demo-user"
    refused = await hub_client.post("/sdk/demo/token", json={"userId": "real-customer"})
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "userId"
    unknown = await hub_client.post("/sdk/demo/send", json={"userId": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "userId"
    page = await hub_client.get("/sdk/demo", params={"user": '"><script>alert(1)</script>'})
    assert page.status_code == 200 and "<script>alert(1)" not in page.text
    assert "nonce-" in page.headers["content-security-policy"]


async def test_the_sdk_file_is_served_as_a_cacheable_module(hub_client):
    response = await hub_client.get("/sdk/hub-sdk.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "export function createStream" in response.text
    again = await hub_client.get("/sdk/hub-sdk.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_cross_origin_calls_are_allowed_only_from_configured_origins(hub_client, hub_env):
    path = f"/v1/{hub_env.id}/sdk/streams/default/cards"
    headers = {"Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization,if-none-match"}
    allowed = await hub_client.options(path, headers={"Origin": APP_ORIGIN, **headers})
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = await hub_client.options(path, headers={"Origin": "http://evil.test", **headers})
    assert other.headers.get("access-control-allow-origin") != "http://evil.test"
