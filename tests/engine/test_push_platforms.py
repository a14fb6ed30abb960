"""A third-party plugin adds a push *platform* (``hub_register_push_platforms``): flows name it,
its own devices (``hub_push_devices``) get pushes from a push step and from a card's push
template through the dispatcher and a worker job (``hub_send_push``), and ``notification-sent``
is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from hub.hookspecs import hookimpl
from hub.registry import RegistrationError, collect
from hub.services import flows as flow_service
from tests.engine.test_push import instances_of, notifications

CARD_FLOW: dict[str, Any] = {
    "name": "Page on call",
    "cardTemplates": [{"id": "incident", "name": "Incident", "platforms": ["web"],
                       "elements": [{"type": "headline", "text": "Disk full on {{customer.userId}}"}],
                       "push": {"title": "Incident", "body": "Disk full", "extraPlatforms": ["pager"]}}],
    "steps": [{"id": "show", "type": "card", "template": "incident"}],
}

STEP_FLOW: dict[str, Any] = {
    "name": "Page",
    "steps": [{"id": "page", "type": "push", "title": "Wake up", "body": "{{customer.userId}}",
               "platforms": ["pager"], "next": "done"},
              {"id": "done", "type": "end"}],
}


class PagerPlatform:
    """Pagers: a platform Hub does not know, with devices the plugin keeps itself."""

    def __init__(self) -> None:
        self.pagers = {"ada": "555-0100"}
        self.asked: list[list[str]] = []
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @hookimpl
    def hub_register_push_platforms(self, register: Any) -> None:
        register("pager")

    @hookimpl
    def hub_push_devices(self, environment_id: str, user_ids: list[str], platforms: list[str]) -> list[dict]:
        self.asked.append(platforms)
        if "pager" not in platforms:
            return []
        return [{"deviceId": f"pager-{u}", "userId": u, "platform": "pager", "token": self.pagers[u]}
                for u in user_ids if u in self.pagers]

    @hookimpl
    async def hub_send_push(self, notification: dict[str, Any], device: dict[str, Any]) -> dict | None:
        if device["platform"] != "pager":
            return None
        self.sent.append((notification, device))
        return {"status": "sent", "provider": "pager", "detail": "paged", "retryAfter": None,
                "providerMessageId": f"page-{len(self.sent)}"}


@pytest.fixture
def pager() -> PagerPlatform:
    return PagerPlatform()


@pytest.fixture
def hub_plugins(pager: PagerPlatform) -> list[Any]:
    return [pager]


async def test_the_platform_a_plugin_registers_is_known_to_flows(hub, pager):
    assert hub.registry.push_platforms == {"pager": hub.pm.get_name(pager)}
    assert flow_service.push_platforms(hub) == ["pager"]


async def test_a_push_step_reaches_the_plugins_platform_through_a_worker(flows, pager, hub, hub_env):
    await flows.publish("page", STEP_FLOW)
    await flows.start("page", target={"usersById": ["ada"]}, payload={})
    await flows.run_jobs()
    [(notification, device)] = pager.sent
    assert device["platform"] == "pager" and device["token"] == "555-0100"
    assert notification["title"] == "Wake up" and notification["body"] == "ada"
    assert ["pager"] in pager.asked
    [inst] = await instances_of(hub, hub_env.id, "page")
    assert inst["status"] == "completed", inst
    [sent] = await notifications(flows, userId="ada")
    assert sent["status"] == "sent" and sent["deliveries"][0]["provider"] == "pager"
    [event] = await flows.events(type="notification-sent")
    assert event["endUserId"] == "ada" and event["platformContext"]["flowConfigId"] == "page"


async def test_a_cards_push_reaches_the_extra_platform_its_template_names(flows, pager, hub_env):
    await flows.publish("incident", CARD_FLOW)
    await flows.start("incident", target={"usersById": ["ada"]}, payload={})
    await flows.run_jobs()
    [card] = await flows.cards(userId="ada")
    assert card["status"] == "active"
    [(notification, device)] = pager.sent
    assert device["platform"] == "pager" and notification["cardInstanceId"] == card["cardInstanceId"]
    assert notification["scenario"] == "newCard" and notification["title"] == "Incident"
    assert sorted(pager.asked[-1]) == ["pager", "web"]  # the card's platform and the extra one
    [event] = await flows.events(type="notification-sent")
    assert event["cardContext"]["cardInstanceId"] == card["cardInstanceId"]
    assert event["properties"]["notificationScenario"] == "newCard"


async def test_a_flow_naming_a_platform_no_plugin_added_is_refused_precisely(flows, hub_env):
    typo = {**STEP_FLOW, "steps": [{**STEP_FLOW["steps"][0], "platforms": ["android", "pagr"]},
                                   STEP_FLOW["steps"][1]]}
    response = await flows.client.post(f"/v1/{hub_env.id}/flows", headers=hub_env.headers(),
                                       json={"id": "typo", "definition": typo})
    assert response.status_code == 422, response.text
    assert "definition.steps[0].platforms[1]" in response.text
    assert "unknown push platform 'pagr' (known: ios, android, web, pager" in response.text
    schema = (await flows.client.get(f"/v1/{hub_env.id}/flows/schema", headers=hub_env.headers())).json()
    push = next(v for v in schema["$defs"]["step"]["oneOf"] if v["properties"]["type"] == {"const": "push"})
    assert "pager" in push["properties"]["platforms"]["items"]["enum"]


def test_a_built_in_or_twice_registered_platform_stops_start_up():
    import pluggy

    from hub import hookspecs

    class Again:
        @hookimpl
        def hub_register_push_platforms(self, register: Any) -> None:
            register("pager")

    class Android:
        @hookimpl
        def hub_register_push_platforms(self, register: Any) -> None:
            register("android")

    for plugins, message in (([PagerPlatform(), Again()], "registered by"), ([Android()], "built in")):
        pm = pluggy.PluginManager("hub")
        pm.add_hookspecs(hookspecs)
        for plugin in plugins:
            pm.register(plugin)
        with pytest.raises(RegistrationError, match=message):
            collect(pm)
