"""The staff pages with a keyboard and as assistive technology sees them, in a real browser
(Debian's Chromium): signing in without a mouse, the skip link, names of every control, one h1
and the landmarks on each page, the card-state tabs, and card previews that stay out of the way."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.async_api import expect

from tests.plugins.workbench.conftest import PASSWORD
from tests.plugins.workbench.test_small_screens_browser import PAGES, hub_settings, staff_world

__all__ = ["hub_settings"]  # the fixture: a webhook subscription on loopback

CONTROLS = "input:not([type=hidden]), select, textarea, button"
FOCUSED = """() => {
  const el = document.activeElement;
  return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.innerText || el.value || '').trim(),
          inPreview: !!el.closest('.cc-preview, .wb-preview')};
}"""


async def tab(page: Any) -> dict[str, Any]:
    await page.keyboard.press("Tab")
    return await page.evaluate(FOCUSED)


async def tab_until(page: Any, wanted: Any, limit: int = 150) -> list[dict[str, Any]]:
    """Press Tab until ``wanted(focused)``; every element focused on the way (the last is it)."""
    seen = []
    for _ in range(limit):
        seen.append(await tab(page))
        if wanted(seen[-1]):
            return seen
    raise AssertionError(f"not reached with Tab: {seen}")


async def keyboard_sign_in(browser: Any, server: str, next: str) -> Any:
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    await page.goto(f"{server}/ui/login?next={next}")
    first = await tab(page)
    assert first["text"] == "Skip to content", first
    await page.keyboard.press("Enter")
    assert (await page.evaluate(FOCUSED))["id"] == "main"
    assert (await tab(page))["id"] == "email"
    await page.keyboard.type("ada@example.com")
    assert (await tab(page))["id"] == "password"
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**{next}")
    return page


async def unnamed_controls(page: Any) -> list[str]:
    """Shown form controls (with every <details> opened), outside inert previews, whose
    accessible name is empty."""
    await page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    unnamed = []
    controls = page.locator(CONTROLS)
    for index in range(await controls.count()):
        control = controls.nth(index)
        if not await control.is_visible() or await control.evaluate("el => !!el.closest('[inert]')"):
            continue
        try:
            await expect(control).to_have_accessible_name(re.compile(r"\S"), timeout=500)
        except AssertionError:
            unnamed.append(await control.evaluate("el => el.outerHTML.slice(0, 160)"))
    return unnamed


async def test_every_page_has_one_h1_the_landmarks_and_named_controls_and_works_by_keyboard(
        hub, hub_env, run_jobs, hub_server, hub_browser, make_staff):
    await staff_world(hub, run_jobs)
    await make_staff("ada@example.com", ["workbench:admin", "customer_center:edit"])
    page = await keyboard_sign_in(hub_browser, hub_server, "/ui/acme/flows")
    problems: dict[str, Any] = {}
    for path in ["/ui/login", *PAGES]:
        if path == "/ui/login":
            login = await (await hub_browser.new_context()).new_page()
            await login.goto(f"{hub_server}/ui/login")
            current = login
        else:
            await page.goto(f"{hub_server}{path}")
            await page.wait_for_load_state("networkidle")
            current = page
        found = {
            "h1": await current.locator("h1").count(),
            "banner": await current.get_by_role("banner").count(),
            "main": await current.get_by_role("main").count(),
            "navigation": await current.get_by_role("navigation", name="Sections").count(),
            "unnamed": await unnamed_controls(current),
        }
        wanted = {"h1": 1, "banner": 1, "main": 1, "navigation": 0 if path == "/ui/login" else 1,
                  "unnamed": []}
        if found != wanted:
            problems[path] = found
    assert not problems, json.dumps(problems, indent=1)
    await page.context.close()


async def test_state_tabs_work_by_keyboard_and_previews_are_out_of_the_tab_order(
        hub, hub_env, run_jobs, hub_server, hub_browser, make_staff):
    await staff_world(hub, run_jobs)
    await make_staff("ada@example.com", ["workbench:admin", "customer_center:edit"])
    page = await keyboard_sign_in(hub_browser, hub_server, "/ui/acme/customers/u1")
    previews = page.locator(".cc-preview")
    await previews.first.locator(".hub-card button").first.wait_for()  # the SDK drew its buttons
    assert await previews.first.get_attribute("inert") is not None
    # Tab through the whole page: its previews' buttons never take the focus.
    await page.locator("#main").focus()
    walk = await tab_until(page, lambda f: f["tag"] == "body" or f["text"] == "Skip to content", limit=300)
    assert len(walk) > 10, walk
    assert [f for f in walk if f["inPreview"]] == []
    assert {"Useful", "Not useful"} & {f["text"] for f in walk} == set()
    # The state tabs: reached with Tab, followed with Enter, the list and the address change.
    await page.locator("#main").focus()
    await tab_until(page, lambda focused: focused["text"] == "Completed")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/ui/acme/customers/u1?state=completed&container=default")
    tabs = page.get_by_role("navigation", name="Card states")
    await expect(tabs.get_by_role("link", name="Completed")).to_have_attribute("aria-current", "page")
    await page.locator(".cc-preview .hub-card").first.wait_for()
    await page.context.close()


async def test_flow_editor_previews_are_out_of_the_tab_order(hub, hub_env, run_jobs, hub_server, hub_browser,
                                                             make_staff):
    await staff_world(hub, run_jobs)
    await make_staff("ada@example.com", ["workbench:admin"])
    page = await keyboard_sign_in(hub_browser, hub_server, "/ui/acme/flows/fraud-alert")
    preview = page.locator(".wb-preview").first
    await preview.locator("button").first.wait_for()  # the card's answer buttons
    assert await preview.get_attribute("inert") is not None
    await page.get_by_label("Preview theme").focus()
    after = await tab_until(page, lambda focused: not focused["inPreview"] or focused["tag"] == "body")
    assert len(after) == 1, after
    await page.context.close()
