"""Helpers for engine tests: publish a flow, start it, look at what it did."""

from typing import Any

import pytest

from hub.services import timers

CARD_FLOW: dict[str, Any] = {
    "name": "Welcome",
    "variables": [{"name": "offer", "type": "string", "default": "10% off"}],
    "cardTemplates": [{"id": "hello", "name": "Hello", "priority": 7, "elements": [
        {"type": "headline", "text": "Hi {{customer.fields.name}}"},
        {"type": "text", "text": "Your offer: {{variables.offer}}"},
        {"type": "button", "label": "OK", "action": "dismiss"}]}],
    "steps": [{"id": "send", "type": "card", "template": "hello"}],
}

FORM_FLOW: dict[str, Any] = {
    "name": "Confirm payment",
    "variables": [{"name": "amount", "type": "number", "required": True}],
    "cardTemplates": [
        {"id": "ask", "name": "Did you pay?", "elements": [
            {"type": "headline", "text": "Did you pay {{variables.amount}}?"},
            {"type": "input", "inputType": "toggle", "id": "mine", "label": "It was me", "required": True},
            {"type": "button", "label": "Send", "action": "submit"}]},
        {"id": "thanks", "name": "Thanks", "elements": [{"type": "headline", "text": "Thanks"}]},
        {"id": "blocked", "name": "Blocked", "elements": [{"type": "headline", "text": "Card blocked"}]},
        {"id": "late", "name": "Late", "elements": [{"type": "headline", "text": "No answer"}]},
    ],
    "steps": [
        {"id": "ask", "type": "card", "template": "ask", "next": "wait"},
        {"id": "wait", "type": "wait_for", "card": "ask", "events": ["card-completed"],
         "timeout": "PT1H", "onTimeout": "late", "next": "decide"},
        {"id": "decide", "type": "branch", "cases": [
            {"when": "steps.ask.values.mine == true", "next": "thanks"}], "default": "blocked"},
        {"id": "thanks", "type": "card", "template": "thanks", "next": "done"},
        {"id": "blocked", "type": "card", "template": "blocked", "next": "done"},
        {"id": "late", "type": "card", "template": "late", "next": "done"},
        {"id": "done", "type": "end"},
    ],
}


class Flows:
    def __init__(self, client, env, run_jobs, hub):
        self.client, self.env, self.run_jobs, self.hub = client, env, run_jobs, hub

    async def publish(self, flow_id: str, definition: dict[str, Any]) -> None:
        headers = self.env.headers()
        created = await self.client.post(f"/v1/{self.env.id}/flows", headers=headers,
                                         json={"id": flow_id, "definition": definition})
        if created.status_code == 409:
            updated = await self.client.put(f"/v1/{self.env.id}/flows/{flow_id}/draft",
                                            headers=headers, json={"definition": definition})
            assert updated.status_code == 200, updated.text
        else:
            assert created.status_code == 201, created.text
        published = await self.client.post(f"/v1/{self.env.id}/flows/{flow_id}/publish", headers=headers)
        assert published.status_code == 200, published.text

    async def start(self, flow_id: str, *, test: bool = False, status: int = 202, **item: Any):
        action = "test" if test else "start"
        response = await self.client.post(f"/v1/{self.env.id}/action-flow/{flow_id}/{action}",
                                          headers=self.env.headers(), json={"flows": [item]})
        assert response.status_code == status, response.text
        return response.json()

    async def users(self, *users: dict[str, Any]) -> None:
        response = await self.client.put(f"/v1/{self.env.id}/users", headers=self.env.headers(),
                                         json={"users": list(users)})
        assert response.status_code == 200 and response.json()["failed"] == 0, response.text

    async def cards(self, **query: Any) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/{self.env.id}/cards", headers=self.env.headers(),
                                         params={"limit": 1000, **query})
        assert response.status_code == 200, response.text
        return response.json()["cards"]

    async def events(self, **query: Any) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/{self.env.id}/analytics/events",
                                         headers=self.env.headers(), params={"limit": 1000, **query})
        assert response.status_code == 200, response.text
        return response.json()["events"]

    async def fire_due_timers(self, clock) -> None:
        await timers.sweep_timers({"hub": self.hub})
        await self.run_jobs()


@pytest.fixture
def flows(hub_client, hub_env, run_jobs, hub):
    return Flows(hub_client, hub_env, run_jobs, hub)
