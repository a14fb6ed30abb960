"""Fixtures of the webhooks plugin's tests (inbound triggers and outbound subscriptions)."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hub_plugins.webhooks import inbound_signing

REPO = Path(__file__).resolve().parents[3]
FRAUD_FLOW = json.loads((REPO / "examples/flows/fraud_alert.json").read_text())


class Inbound:
    """Drives inbound triggers through the API: publish a flow, make a trigger, call its URL."""

    def __init__(self, client: Any, env: Any) -> None:
        self.client, self.env = client, env

    async def publish(self, flow_id: str = "fraud-alert", definition: dict[str, Any] | None = None) -> str:
        headers = self.env.headers()
        created = await self.client.post(
            f"/v1/{self.env.id}/flows",
            headers=headers,
            json={"id": flow_id, "definition": definition or FRAUD_FLOW},
        )
        assert created.status_code == 201, created.text
        published = await self.client.post(f"/v1/{self.env.id}/flows/{flow_id}/publish", headers=headers)
        assert published.status_code == 200, published.text
        return flow_id

    async def create(self, status: int = 201, **body: Any) -> dict[str, Any]:
        body.setdefault("flowConfigId", "fraud-alert")
        response = await self.client.post(
            f"/v1/{self.env.id}/triggers", headers=self.env.headers(), json=body
        )
        assert response.status_code == status, response.text
        return dict(response.json())

    async def hook(
        self,
        trigger: dict[str, Any],
        body: Any,
        *,
        sign: str | None = None,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Any:
        """POST ``body`` to the trigger's URL; ``sign``: ``"hub"`` or ``"standard"`` signs it."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        stamp = int(time.time()) if timestamp is None else timestamp
        key = secret or trigger.get("secret", "")
        if sign == "hub":
            sent["Hub-Signature"] = inbound_signing.sign_hub(key, raw, stamp)
        elif sign == "standard":
            message_id = sent.setdefault("webhook-id", f"msg_{time.time_ns()}")
            sent["webhook-timestamp"] = str(stamp)
            sent["webhook-signature"] = inbound_signing.sign_standard(key, message_id, raw, stamp)
        path = trigger["url"].split("://", 1)[1].split("/", 1)[1]
        return await self.client.post("/" + path, content=raw, headers=sent)


@pytest.fixture
def inbound(hub_client, hub_env) -> Inbound:
    """Helper for inbound trigger tests (see :class:`Inbound`)."""
    return Inbound(hub_client, hub_env)


# --- outbound subscriptions -------------------------------------------------------------------

# Quick retries and short waits, so reliability tests take seconds; set before the Hub is built.
FAST_OUTBOUND = {
    "HUB_WEBHOOKS_OUTBOUND_LINGER_MS": "20",
    "HUB_WEBHOOKS_OUTBOUND_TIMEOUT_SECONDS": "0.5",
    "HUB_WEBHOOKS_OUTBOUND_BACKOFF_BASE_SECONDS": "0.05",
    "HUB_WEBHOOKS_OUTBOUND_MAX_BACKOFF_SECONDS": "1",
    "HUB_WEBHOOKS_OUTBOUND_SUBSCRIPTION_CACHE_SECONDS": "0",
}


@pytest.fixture
def outbound_fast(monkeypatch) -> None:
    """Fast outbound delivery settings (list it before ``hub``: ``usefixtures`` does)."""
    for name, value in FAST_OUTBOUND.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (``tests/fakes/webhook_receiver.py``)."""
    from tests.fakes.webhook_receiver import webhook_receiver

    with webhook_receiver() as fake:
        yield fake


class Outbound:
    """Drives outbound subscriptions through the API and records analytics events to send."""

    def __init__(self, hub: Any, client: Any, env: Any) -> None:
        self.hub, self.client, self.env = hub, client, env

    def url(self, suffix: str = "", env: Any = None) -> str:
        return f"/v1/{(env or self.env).id}/webhooks{suffix}"

    async def create(self, receiver: Any = None, status: int = 201, env: Any = None, **body: Any) -> Any:
        if receiver is not None:
            body.setdefault("url", receiver.url)
        response = await self.client.post(self.url(env=env), headers=(env or self.env).headers(), json=body)
        assert response.status_code == status, response.text
        created = response.json()
        if receiver is not None and status == 201:
            receiver.secrets.append(created["secret"])
        return created

    async def call(self, method: str, suffix: str, env: Any = None, **kwargs: Any) -> Any:
        return await self.client.request(
            method, self.url(suffix, env), headers=(env or self.env).headers(), **kwargs
        )

    async def record(
        self, count: int, name: str = "order-placed", user: str = "u1", env: Any = None, **extra: Any
    ) -> list[str]:
        """Record ``count`` custom events (the way ``POST /events`` does); returns their ids."""
        from hub.services.analytics import record_custom_events

        items = [{"userId": user, "name": name, "properties": {"n": i}, **extra} for i in range(count)]
        result = await record_custom_events(self.hub, (env or self.env).id, items)
        assert result["failed"] == 0, result
        return [r["id"] for r in result["results"]]


@pytest.fixture
def outbound(hub, hub_client, hub_env) -> Outbound:
    """Helper for outbound webhook tests (see :class:`Outbound`)."""
    return Outbound(hub, hub_client, hub_env)
