"""Fixtures of the salesforce_mc plugin's tests: Journey Builder's side of the activity."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from hub_plugins.salesforce_mc import signing

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "jb-signing-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"
INIT_ACTIVITY: dict[str, Any] = json.loads((FIXTURES / "init_activity.json").read_text())
EXECUTE_BODY: dict[str, Any] = json.loads((FIXTURES / "execute_body.json").read_text())

ORDER_FLOW: dict[str, Any] = {
    "name": "Order follow-up",
    "variables": [
        {"name": "amount", "type": "number", "required": True},
        {"name": "vip", "type": "boolean", "default": False},
        {"name": "due", "type": "date"},
        {"name": "discount", "type": "string", "default": "none"},
    ],
    "cardTemplates": [{"id": "note", "name": "Note", "elements": [
        {"type": "headline", "text": "Your order of {{variables.amount}}"},
        {"type": "button", "label": "OK", "action": "dismiss"}]}],
    "steps": [{"id": "send", "type": "card", "template": "note"}],
}


class Journey:
    """Plays Journey Builder: sets Hub's settings, signs bodies with the package's secret, calls."""

    def __init__(self, client: Any, env: Any) -> None:
        self.client, self.env = client, env
        self.settings: dict[str, Any] = {}

    async def install(self, **changes: Any) -> dict[str, Any]:
        body = {"jwtSigningSecret": SECRET, **changes}
        response = await self.client.put(f"/v1/{self.env.id}/integrations/sfmc", headers=self.env.headers(),
                                         json=body)
        assert response.status_code == 200, response.text
        self.settings = response.json()
        return self.settings

    async def publish(self, flow_id: str = "order", definition: dict[str, Any] | None = None) -> str:
        headers = self.env.headers()
        created = await self.client.post(f"/v1/{self.env.id}/flows", headers=headers,
                                         json={"id": flow_id, "definition": definition or ORDER_FLOW})
        assert created.status_code == 201, created.text
        published = await self.client.post(f"/v1/{self.env.id}/flows/{flow_id}/publish", headers=headers)
        assert published.status_code == 200, published.text
        return flow_id

    def path(self, name: str, split: bool = False) -> str:
        url = self.settings["decisionUrl" if split else "activityUrl"]
        return "/" + url.split("://", 1)[1].split("/", 1)[1] + f"/{name}"

    @staticmethod
    def payload(in_arguments: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
        body = copy.deepcopy(EXECUTE_BODY)
        if in_arguments is not None:
            body["inArguments"] = in_arguments
        body.update(overrides)
        return body

    @staticmethod
    def jwt(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
        return signing.sign(claims, secret, alg)

    async def execute(self, claims: dict[str, Any] | None = None, *, raw: bytes | None = None,
                      split: bool = False, content_type: str = "application/jwt", **overrides: Any) -> Any:
        if raw is None:
            raw = self.jwt(claims if claims is not None else self.payload(**overrides)).encode()
        return await self.client.post(self.path("execute", split), content=raw,
                                      headers={"Content-Type": content_type})

    async def lifecycle(self, action: str, body: dict[str, Any], *, jwt: bool = False, split: bool = False,
                        secret: str = SECRET) -> Any:
        if jwt:
            return await self.client.post(self.path(action, split), content=self.jwt(body, secret).encode(),
                                          headers={"Content-Type": "application/jwt"})
        return await self.client.post(self.path(action, split), json=body)


def lifecycle_body(activity: str = "act-1", version: str = "1") -> dict[str, Any]:
    return {"activityObjectID": activity, "interactionId": "c84b8fb2-bb59-4402-b878-f28fa263e8d7",
            "originalDefinitionId": "d59cff7e-a90f-4af5-8cee-5451044fcdda",
            "interactionKey": "6afdb8ca-312e-d6bd-f7ca-4f91ca68d7db", "interactionVersion": version}


def expired(seconds_ago: int = 600) -> int:
    return int(time.time()) - seconds_ago


@pytest.fixture
def journey(hub_client: Any, hub_env: Any) -> Journey:
    return Journey(hub_client, hub_env)


SF_USER, SF_PASSWORD, SF_TOKEN = "hub-sync@acme.example.com", "Pa55-word!<&>", "TOKEN123abc"


@pytest.fixture
def salesforce() -> Any:
    """The fake Salesforce (``tests/fakes/salesforce.py``), three records a page, one user."""
    from tests.fakes.salesforce import running

    with running(page_size=3) as fake:
        fake.add_user(SF_USER, SF_PASSWORD, SF_TOKEN)
        fake.define_field("Contact", "Loyalty_Points__c")
        fake.define_field("Contact", "Vip__c")
        fake.define_field("Contact", "Hub_User_Id__c")
        yield fake
