"""Fixtures of the marketo plugin's tests: a fake Marketo, published flows, the integration set up.

``SAMPLE_INVOCATION`` has the shape of the sample invocation of Adobe's SSFS sample provider
(adobe/mkto-flow-lookup, ``test/mocks/mockAsyncRequest.js``): one lead in ``objectData`` with an
integer ``id`` in ``objectContext``, the flow-step fields in ``flowStepContext``, the
subscription's Munchkin id in ``context.subscription``, ``batchid`` in lower case. Its flow-step
fields are Hub's (``flowConfigId`` and a variable) instead of the lookup table's.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from tests.fakes.marketo import fake_marketo

WELCOME_FLOW: dict[str, Any] = {
    "name": "Welcome",
    "variables": [
        {
            "name": "offer",
            "type": "string",
            "default": "a welcome gift",
            "description": "What the card offers",
        },
        {"name": "amount", "type": "number"},
        {"name": "vip", "type": "boolean"},
        {"name": "details", "type": "object"},
        {"name": "fixed", "type": "string", "default": "always", "overridable": False},
    ],
    "cardTemplates": [
        {
            "id": "hello",
            "name": "Hello",
            "elements": [{"type": "headline", "text": "Hello: {{variables.offer}}"}],
        }
    ],
    "steps": [{"id": "send", "type": "card", "template": "hello"}],
}

SAMPLE_INVOCATION: dict[str, Any] = {
    "id": 1001,
    "batchid": "9e7df252-1969-4f22-861a-82d19769eb1b",
    "campaignId": 1001,
    "type": "dummy",
    "callbackUrl": "",
    "apiCallBackKey": "",
    "token": "eb26ba28-e3f4-4423-a75d-28118b81828c",
    "context": {
        "subscription": {"munchkinId": "AAA-999-ZZZ", "prefix": "marketob2"},
        "admin": {"foo": "bar"},
        "campaign": {"id": 1001, "name": "mock"},
        "program": {"id": 1001, "name": "mock"},
    },
    "objectData": [
        {
            "objectType": "lead",
            "objectContext": {"id": 1000000, "email": "test@example.com", "country": "Zimbabwe"},
            "flowStepContext": {"flowConfigId": "welcome", "offer": "10% off"},
        }
    ],
}

# Quick callback retries, so reliability tests take seconds; set before the Hub is built.
FAST_CALLBACKS = {
    "HUB_MARKETO_CALLBACK_TIMEOUT_SECONDS": "1",
    "HUB_MARKETO_CALLBACK_BACKOFF_BASE_SECONDS": "0.02",
    "HUB_MARKETO_CALLBACK_MAX_BACKOFF_SECONDS": "0.2",
    "HUB_MARKETO_CALLBACK_TRIES_PER_RUN": "2",
    "HUB_MARKETO_CALLBACK_MAX_ATTEMPTS": "5",
}


@pytest.fixture(autouse=True)
def marketo_fast(monkeypatch) -> None:
    for name, value in FAST_CALLBACKS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def hub_settings(hub_settings):
    # The fake Marketo's callback URL is on loopback.
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)


@pytest.fixture
def fake():
    """A fake Marketo on loopback (``tests/fakes/marketo.py``)."""
    with fake_marketo() as server:
        yield server


class Marketo:
    """Drives the integration through Hub's API and calls the service as Marketo does."""

    def __init__(self, hub: Any, client: Any, env: Any) -> None:
        self.hub, self.client, self.env = hub, client, env
        self.api_key = ""

    @property
    def base(self) -> str:
        return f"/marketo/{self.env.id}"

    async def publish(self, flow_id: str = "welcome", definition: dict[str, Any] | None = None) -> str:
        headers = self.env.headers()
        created = await self.client.post(
            f"/v1/{self.env.id}/flows",
            headers=headers,
            json={"id": flow_id, "definition": definition or WELCOME_FLOW},
        )
        assert created.status_code == 201, created.text
        published = await self.client.post(f"/v1/{self.env.id}/flows/{flow_id}/publish", headers=headers)
        assert published.status_code == 200, published.text
        return flow_id

    async def configure(self, status: int | None = None, **settings: Any) -> Any:
        response = await self.client.put(
            f"/v1/{self.env.id}/integrations/marketo", headers=self.env.headers(), json=settings
        )
        if status is not None:
            assert response.status_code == status, response.text
        if response.status_code in (200, 201) and response.json().get("apiKey"):
            self.api_key = response.json()["apiKey"]
        return response

    async def call(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        headers = {"x-api-key": self.api_key if key is None else key, **kwargs.pop("headers", {})}
        return await self.client.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    async def submit(self, body: Any, *, key: str | None = None, **kwargs: Any) -> Any:
        return await self.call("POST", "/submitAsyncAction", key=key, json=body, **kwargs)

    async def batch(self, batch_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/{self.env.id}/integrations/marketo/batches/{batch_id}", headers=self.env.headers()
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def marketo(hub, hub_client, hub_env) -> Marketo:
    return Marketo(hub, hub_client, hub_env)


@pytest.fixture
async def ready(marketo) -> Marketo:
    """The ``welcome`` flow published and the integration set up (default settings)."""
    await marketo.publish()
    await marketo.configure(status=201)
    return marketo


def sample(fake: Any) -> dict[str, Any]:
    """The sample invocation, pointed at the fake Marketo with a token it issued."""
    body = copy.deepcopy(SAMPLE_INVOCATION)
    fake.tokens.add(body["token"])
    body["callbackUrl"] = fake.callback_url
    body["apiCallBackKey"] = fake.callback_key
    return body


def leads(count: int, start: int = 1_000_001) -> list[dict[str, Any]]:
    return [{"id": start + i, "email": f"lead{start + i}@example.com"} for i in range(count)]


def assert_problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["errors"][0]["field"] == field, body
    return body
