"""Fixtures for the staff UI: members in groups, and clients signed in as them.

``staff_login(client, email)`` signs a client in through the real form (its CSRF cookie and
field); ``make_staff(email, permissions, envs)`` creates a group named after the member with
those permissions, and the member in it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from hub_plugins.workbench import staff as staff_service

PASSWORD = "correct horse battery staple"


@pytest.fixture
def hub_settings(hub_settings: Any) -> Any:
    # Fewer scrypt rounds are not an option (the hash format is fixed); keep sign-in limits small.
    return hub_settings


MakeStaff = Callable[..., Awaitable[staff_service.Staff]]


@pytest.fixture
def make_staff(hub: Any) -> MakeStaff:
    async def make(email: str, permissions: list[str], envs: list[str] | None = None,
                   password: str | None = PASSWORD) -> staff_service.Staff:
        group = email.split("@")[0]
        await staff_service.save_group(hub, group, permissions, envs or ["acme"])
        await staff_service.create_staff(hub, email, password=password, groups=[group])
        member = await staff_service.staff_by_email(hub, email)
        assert member is not None
        return member

    return make


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token field in the page"
    return found.group(1)


async def staff_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD,
                      next: str = "/ui/") -> httpx.Response:
    page = await client.get("/ui/login", params={"next": next})
    assert page.status_code == 200
    return await client.post("/ui/login", data={"email": email, "password": password, "next": next,
                                                "csrf_token": form_token(page.text)})


@pytest.fixture
async def ui_client(hub_app: Any) -> Any:
    """A factory of fresh clients (each with its own cookies) for ``hub_app``."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=hub_app, raise_app_exceptions=False),
                                   base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def signed_in(ui_client: Any, make_staff: MakeStaff) -> Callable[..., Awaitable[httpx.AsyncClient]]:
    """``await signed_in(email, permissions, envs)``: a client signed in as a new member."""

    async def sign_in(email: str, permissions: list[str], envs: list[str] | None = None) -> httpx.AsyncClient:
        await make_staff(email, permissions, envs)
        client = ui_client()
        response = await staff_login(client, email)
        assert response.status_code == 303, response.text
        return client

    return sign_in


def csrf_of(html: str) -> str:
    """The session's CSRF token, from the ``hx-headers`` of a signed-in page."""
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def browser_sign_in(browser: Any, server: str, email: str, password: str = PASSWORD,
                          next: str = "/ui/", **context: Any) -> Any:
    """A new browser page signed in as ``email`` through the real form; it is at ``next``."""
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{server}/ui/login?next={next}")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/ui/login" not in url)
    return page
