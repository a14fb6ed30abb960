"""Fixtures of the push_apns tests: the APNs fake (HTTP/2 over TLS) on loopback, a Hub pointed at
it and trusting its CA, and :class:`Push` to configure an environment and call ``hub_send_push``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.plugins import call_first
from tests.fakes.apns import ApnsKey, FakeApns, device_token, running


@pytest.fixture
async def apns() -> Any:
    """The APNs fake (``tests/fakes/apns.py``)."""
    async with running() as fake:
        yield fake


@pytest.fixture
def hub_settings(hub_settings: Any, apns: FakeApns, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Hub sends to the APNs fake and trusts the CA of its certificate."""
    monkeypatch.setenv("HUB_PUSH_APNS_BASE_URL", apns.url)
    monkeypatch.setenv("HUB_PUSH_APNS_CA_FILE", apns.ca_file)
    return hub_settings


def notification(env: str, **overrides: Any) -> dict[str, Any]:
    """A notification as the core dispatcher builds it (PUSH_CONTRACT.md)."""
    card = f"card-{uuid.uuid4().hex[:8]}"
    value = {"notificationId": f"n-{uuid.uuid4()}", "environmentId": env, "userId": "ada",
             "title": "Card waiting", "body": "A payment needs your approval",
             "data": {"cardInstanceId": card, "flowId": "fraud-alert"}, "cardInstanceId": card,
             "scenario": "newCard", "priority": "high", "ttlSeconds": 3600, "collapseKey": card}
    value.update(overrides)
    return value


def device(platform: str = "ios", token: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A device in the shape of ``hub_plugins.sdk_streams.devices.device_json``."""
    value = {"deviceId": str(uuid.uuid4()), "userId": "ada", "platform": platform,
             "token": token or device_token(), "appId": "com.example.bank", "apnsTopic": None,
             "state": "valid", "lastError": None, "createdAt": "2026-11-24T00:00:00Z",
             "updatedAt": "2026-11-24T00:00:00Z", "invalidatedAt": None}
    value.update(overrides)
    return value


class Push:
    """Configures APNs for an environment through the API and sends through the hook."""

    def __init__(self, hub: Any, client: Any, env: Any, apns: FakeApns) -> None:
        self.hub, self.client, self.env, self.apns = hub, client, env, apns
        self.key: ApnsKey | None = None

    async def configure(self, key: ApnsKey | None = None, environment: str = "sandbox",
                        env: Any = None) -> dict[str, Any]:
        self.key = key or self.apns.make_key()
        env = env or self.env
        response = await self.client.put(f"/v1/{env.id}/push/providers/apns", headers=env.headers(),
                                         json=self.key.config(environment))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def send(self, dev: dict[str, Any] | None = None, env: str | None = None,
                   **overrides: Any) -> dict[str, Any] | None:
        result = await call_first(self.hub.pm, "hub_send_push", hub=self.hub,
                                  notification=notification(env or self.env.id, **overrides),
                                  device=dev or device())
        return result


@pytest.fixture
def push(hub: Any, hub_client: Any, hub_env: Any, apns: FakeApns) -> Push:
    return Push(hub, hub_client, hub_env, apns)


@contextlib.asynccontextmanager
async def own_push(hub_settings: Any, apns: FakeApns, monkeypatch: pytest.MonkeyPatch,
                   **plugin_env: str) -> AsyncIterator[Push]:
    """A Hub of its own with other ``HUB_PUSH_APNS_*`` settings (read when a Hub is built), an
    environment ``own`` and a client for its API; sends to ``apns`` unless told otherwise."""
    import httpx

    from hub.app import Hub, create_app
    from hub.testing import make_environment

    monkeypatch.setenv("HUB_PUSH_APNS_BASE_URL", apns.url)
    monkeypatch.setenv("HUB_PUSH_APNS_CA_FILE", apns.ca_file)
    for name, value in plugin_env.items():
        monkeypatch.setenv(f"HUB_PUSH_APNS_{name.upper()}", value)
    hub = Hub(hub_settings)
    await hub.start()
    try:
        transport = httpx.ASGITransport(app=create_app(hub=hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Push(hub, client, await make_environment(hub, "own"), apns)
    finally:
        await hub.close()
