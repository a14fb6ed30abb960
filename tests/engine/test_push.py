"""The push dispatcher end to end, through a third-party push plugin (``PagerPush``) registered
beside the built-ins: card pushes, push steps, the customer's preferences and windows, retries,
invalid devices, cancellation, events, the health API and /metrics."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.db import tables
from hub.hookspecs import hookimpl
from hub.services import cards as card_service
from hub.services import push as push_service

PUSH_FLOW: dict[str, Any] = {
    "name": "Approve payment",
    "variables": [{"name": "amount", "type": "string", "default": "$20"}],
    "cardTemplates": [{"id": "approve", "name": "Approve", "priority": 8, "platforms": ["android", "ios"],
                       "elements": [{"type": "headline", "text": "Approve {{variables.amount}}?"},
                                    {"type": "button", "label": "OK", "action": "dismiss"}],
                       "push": {"title": "Payment waiting", "body": "Approve {{variables.amount}}"}}],
    "steps": [{"id": "send", "type": "card", "template": "approve"}],
}

STEP_FLOW: dict[str, Any] = {
    "name": "Nudge",
    "variables": [{"name": "text", "type": "string", "default": "Your statement is ready"}],
    "steps": [{"id": "nudge", "type": "push", "title": "Hi {{customer.userId}}", "body": "{{variables.text}}",
               "data": {"deepLink": "bank://statements"}, "next": "done"},
              {"id": "done", "type": "end"}],
}


class PagerPush:
    """A push service Hub does not ship (say, for Android phones without Google services): it
    keeps its own devices and claims them in ``hub_send_push``; ``script`` scripts its answers."""

    def __init__(self) -> None:
        self.devices: list[dict[str, Any]] = []
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.script: dict[str, list[dict[str, Any]]] = {}
        self.invalidated: list[tuple[str, str]] = []

    def add(self, user_id: str, token: str, platform: str = "android") -> dict[str, Any]:
        device = {"deviceId": f"pager-{token}", "userId": user_id, "platform": platform, "token": token,
                  "service": "pager", "state": "valid"}
        self.devices.append(device)
        return device

    @hookimpl
    def hub_push_devices(self, environment_id: str, user_ids: list[str], platforms: list[str]) -> list[dict]:
        return [d for d in self.devices if d["userId"] in user_ids and d["platform"] in platforms
                and d["state"] == "valid"]

    @hookimpl
    async def hub_send_push(self, notification: dict[str, Any], device: dict[str, Any]) -> dict | None:
        if device.get("service") != "pager":
            return None
        self.sent.append((notification, device))
        answers = self.script.get(device["token"])
        answer = answers.pop(0) if answers else {"status": "sent"}
        return {"provider": "pager", "detail": f"pager answered {answer['status']}", "retryAfter": None,
                "providerMessageId": f"m-{len(self.sent)}", **answer}

    @hookimpl
    def hub_push_device_invalid(self, environment_id: str, device: dict[str, Any], detail: str) -> None:
        self.invalidated.append((device["deviceId"], detail))
        for mine in self.devices:
            if mine["deviceId"] == device["deviceId"]:
                mine["state"] = "invalid"

    @hookimpl
    def hub_push_device_counts(self, environment_id: str) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for d in self.devices:
            counts.setdefault(d["platform"], {"valid": 0, "invalid": 0})[d["state"]] += 1
        return counts


@pytest.fixture
def pager() -> PagerPush:
    return PagerPush()


@pytest.fixture
def hub_plugins(pager: PagerPush) -> list[Any]:
    return [pager]


async def notifications(flows, **query: Any) -> list[dict[str, Any]]:
    response = await flows.client.get(f"/v1/{flows.env.id}/push/notifications", headers=flows.env.headers(),
                                      params=query)
    assert response.status_code == 200, response.text
    return response.json()


async def send_card(flows, user: str, **payload: Any) -> dict[str, Any]:
    await flows.start("approve", target={"usersById": [user]}, payload=payload)
    await flows.run_jobs()
    [card] = await flows.cards(userId=user)
    return card


async def test_a_card_with_a_push_template_is_pushed_to_the_customers_devices(flows, pager, hub_env):
    pager.add("ada", "t1")
    pager.add("ada", "t2")
    pager.add("ada", "web1", platform="web")  # the card targets android and ios only
    await flows.publish("approve", PUSH_FLOW)
    card = await send_card(flows, "ada", variables={"amount": "$99"}, notificationDetail={"campaign": "q4"})
    assert sorted(d["token"] for _, d in pager.sent) == ["t1", "t2"]
    notification, _ = pager.sent[0]
    assert notification["title"] == "Payment waiting" and notification["body"] == "Approve $99"
    assert notification["priority"] == "high" and notification["scenario"] == "newCard"
    assert notification["data"] == {"campaign": "q4", "cardInstanceId": card["cardInstanceId"],
                                    "notificationScenario": "newCard",
                                    "flowInstanceId": card["flowInstanceId"]}
    assert notification["collapseKey"] == card["cardInstanceId"]
    [sent] = await flows.events(type="notification-sent")
    assert sent["properties"]["notificationScenario"] == "newCard"
    assert sent["properties"]["rescheduledBasedOnEndUserPrefs"] is False
    assert sent["cardContext"]["cardInstanceId"] == card["cardInstanceId"]
    assert sent["platformContext"]["flowConfigId"] == "approve"
    assert sent["platformContext"]["eventNotificationDetail"] == {"campaign": "q4"}
    [shown] = await notifications(flows, userId="ada")
    assert shown["status"] == "sent" and shown["sent"] == 2 and shown["attempts"] == 1
    assert {d["provider"] for d in shown["deliveries"]} == {"pager"}


async def test_running_a_push_job_twice_sends_once(flows, pager, hub, hub_env):
    pager.add("bo", "t1")
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "bo")
    [shown] = await notifications(flows, userId="bo")
    assert await push_service.send_pushes({"hub": hub}, hub_env.id, [shown["notificationId"]]) == 0
    assert len(pager.sent) == 1 and len(await flows.events(type="notification-sent")) == 1


async def test_notifications_turned_off_skip_the_push(flows, pager):
    pager.add("cy", "t1")
    await flows.users({"userId": "cy", "preferences": {"notificationsEnabled": False}})
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "cy")
    assert pager.sent == []
    [shown] = await notifications(flows, userId="cy")
    assert shown["status"] == "skipped" and shown["detail"] == "the customer turned notifications off"
    assert await flows.events(type="notification-sent") == []


async def test_a_customer_without_devices_gets_the_card_and_a_skipped_push(flows, pager):
    await flows.publish("approve", PUSH_FLOW)
    card = await send_card(flows, "di")
    assert card["status"] == "active"
    [shown] = await notifications(flows, userId="di")
    assert shown["status"] == "skipped"
    assert shown["detail"] == "the customer has no valid device on android, ios"


async def test_outside_the_customers_window_the_push_waits_for_it_in_their_timezone(flows, pager, hub, clock):
    # Monday 2026-12-07 06:00 in New York (11:00 UTC); the customer accepts 09:00-17:00 on weekdays.
    clock.set(datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    weekdays = {d: [{"from": "09:00", "to": "17:00"}] for d in ("monday", "tuesday", "wednesday",
                                                               "thursday", "friday")}
    await flows.users({"userId": "ed", "preferences": {
        "timezone": "America/New_York", "notificationWindows": {**weekdays, "saturday": [], "sunday": []}}})
    pager.add("ed", "t1")
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "ed")
    assert pager.sent == []
    [waiting] = await notifications(flows, userId="ed")
    assert waiting["status"] == "scheduled" and waiting["rescheduledBasedOnEndUserPrefs"] is True
    assert waiting["dueAt"] == "2026-12-07T14:00:00Z"  # 09:00 in New York
    clock.set(datetime(2026, 12, 7, 14, 1, tzinfo=UTC))
    assert await push_service.sweep_pushes({"hub": hub}) == 1
    await flows.run_jobs()
    assert len(pager.sent) == 1
    [sent] = await flows.events(type="notification-sent")
    assert sent["properties"]["rescheduledBasedOnEndUserPrefs"] is True


async def close_card(hub, env: str, card_id: str, how: str) -> None:
    if how == "cancelled":
        await card_service.cancel_cards(hub, env, [card_id], "the offer was withdrawn")
    else:
        await card_service.act(hub, env, card_id, "dismiss" if how == "dismissed" else "submit", user_id="fi")


@pytest.mark.parametrize("how", ["dismissed", "completed", "cancelled"])
async def test_a_card_closed_before_its_scheduled_push_cancels_it(flows, pager, hub, hub_env, clock, how):
    clock.set(datetime(2026, 12, 5, 23, 0, tzinfo=UTC))  # a Saturday
    weekend_off = {"notificationWindows": {"saturday": [], "sunday": []}}
    await flows.users({"userId": "fi", "preferences": weekend_off})
    pager.add("fi", "t1")
    await flows.publish("approve", PUSH_FLOW)
    card = await send_card(flows, "fi")
    [waiting] = await notifications(flows, userId="fi")
    assert waiting["dueAt"] == "2026-12-07T00:00:00Z"  # Monday, midnight UTC
    await close_card(hub, hub_env.id, card["cardInstanceId"], how)
    [closed] = await flows.cards(userId="fi")
    assert closed["status"] == how
    [cancelled] = await notifications(flows, userId="fi")
    assert cancelled["status"] == "cancelled"
    assert cancelled["detail"] == f"the card was {how} before its push was sent"
    clock.advance(days=2)
    await push_service.sweep_pushes({"hub": hub})
    await flows.run_jobs()
    assert pager.sent == []


async def test_an_embargoed_card_is_pushed_when_it_is_published(flows, pager, clock):
    pager.add("gus", "t1")
    await flows.publish("approve", PUSH_FLOW)
    embargo = (clock.current + timedelta(hours=1)).isoformat()
    card = await send_card(flows, "gus", cardOptions={"embargo": embargo})
    assert card["status"] == "embargoed" and await notifications(flows, userId="gus") == []
    clock.advance(hours=1, seconds=1)
    await flows.fire_due_timers(clock)
    [shown] = await notifications(flows, userId="gus")
    assert shown["status"] == "sent" and shown["scenario"] == "newCard" and len(pager.sent) == 1


async def test_an_unsnoozed_card_is_pushed_again_as_unsnoozed(flows, pager, hub, hub_env, clock):
    pager.add("hal", "t1")
    await flows.publish("approve", PUSH_FLOW)
    card = await send_card(flows, "hal")
    await card_service.act(hub, hub_env.id, card["cardInstanceId"], "snooze", user_id="hal",
                           until=clock.current + timedelta(minutes=30))
    clock.advance(minutes=31)
    await flows.fire_due_timers(clock)
    scenarios = sorted(n["scenario"] for n, _ in pager.sent)
    assert scenarios == ["newCard", "unsnoozedCard"]
    events = await flows.events(type="notification-sent")
    assert sorted(e["properties"]["notificationScenario"] for e in events) == ["newCard", "unsnoozedCard"]


async def test_a_refused_token_marks_the_device_invalid_and_it_is_not_used_again(flows, pager, hub_env):
    pager.add("ivy", "gone")
    pager.add("ivy", "fine")
    pager.script["gone"] = [{"status": "invalid_device", "detail": "UNREGISTERED"}]
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "ivy")
    assert pager.invalidated == [("pager-gone", "UNREGISTERED")]
    await send_card_again(flows, "ivy")
    assert sorted(d["token"] for _, d in pager.sent) == ["fine", "fine", "gone"]
    health = (await flows.client.get(f"/v1/{hub_env.id}/push/health", headers=hub_env.headers())).json()
    assert health["devices"]["android"]["invalid"] == 1
    assert health["sends"]["pager"] == {"sent": 2, "invalid_device": 1}
    assert health["notifications"]["sent"] == 2 and health["providers"]


async def send_card_again(flows, user: str) -> None:
    await flows.start("approve", target={"usersById": [user]}, payload={})
    await flows.run_jobs()


async def test_a_retry_waits_at_least_retry_after_then_sends(flows, pager, hub, clock):
    pager.add("jo", "busy")
    pager.script["busy"] = [{"status": "retry", "detail": "QUOTA_EXCEEDED", "retryAfter": 120}]
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "jo")
    [waiting] = await notifications(flows, userId="jo")
    assert waiting["status"] == "scheduled" and waiting["attempts"] == 1
    due = datetime.fromisoformat(waiting["dueAt"].replace("Z", "+00:00"))
    assert due >= clock.current + timedelta(seconds=120)
    assert "QUOTA_EXCEEDED" in waiting["detail"]
    clock.set(due + timedelta(seconds=31))
    await push_service.sweep_pushes({"hub": hub})
    await flows.run_jobs()
    [sent] = await notifications(flows, userId="jo")
    assert sent["status"] == "sent" and sent["attempts"] == 2 and len(pager.sent) == 2
    [delivery] = sent["deliveries"]
    assert delivery["attempts"] == 2 and delivery["status"] == "sent"


async def test_a_device_that_keeps_asking_to_retry_is_given_up_after_the_attempts_allowed(
        flows, pager, hub, clock):
    pager.add("kai", "down")
    pager.script["down"] = [{"status": "retry", "detail": "UNAVAILABLE"}] * 20
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "kai")
    for _ in range(hub.settings.push_max_attempts):
        clock.advance(seconds=hub.settings.push_retry_max_seconds + 60)
        await push_service.sweep_pushes({"hub": hub})
        await flows.run_jobs()
    [failed] = await notifications(flows, userId="kai")
    assert failed["status"] == "failed" and failed["attempts"] == hub.settings.push_max_attempts
    assert "gave up after" in failed["detail"]
    assert len(pager.sent) == hub.settings.push_max_attempts


async def test_a_device_no_plugin_sends_to_is_reported_unsupported(flows, pager):
    pager.devices.append({"deviceId": "x1", "userId": "lu", "platform": "ios", "token": "abc",
                          "service": "elsewhere", "state": "valid"})
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "lu")
    [failed] = await notifications(flows, userId="lu")
    assert failed["status"] == "failed" and failed["deliveries"][0]["status"] == "unsupported"
    assert "no push provider sends to ios devices" in failed["detail"]


async def instances_of(hub, env: str, flow_id: str) -> list[dict[str, Any]]:
    fi = tables.flow_instance.c
    async with hub.db.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(tables.flow_instance).where(
            fi.environment_id == env, fi.flow_id == flow_id))).mappings()]


async def test_a_push_step_sends_and_its_output_says_what_happened(flows, pager, hub, hub_env):
    pager.add("mo", "t1", platform="web")
    await flows.publish("nudge", STEP_FLOW)
    await flows.start("nudge", target={"usersById": ["mo"]}, payload={})
    await flows.run_jobs()
    [(notification, _)] = pager.sent
    assert notification["title"] == "Hi mo" and notification["body"] == "Your statement is ready"
    assert notification["data"]["deepLink"] == "bank://statements" and notification["scenario"] is None
    [inst] = await instances_of(hub, hub_env.id, "nudge")
    state = (await flows.client.get(f"/v1/{hub_env.id}/action-flow/instances/{inst['id']}",
                                    headers=hub_env.headers())).json()
    assert state["status"] == "completed", state
    assert state["steps"]["nudge"]["status"] == "sent" and state["steps"]["nudge"]["sent"] == 1
    [sent] = await flows.events(type="notification-sent")
    assert sent["properties"]["notificationScenario"] is None
    assert sent["platformContext"]["flowConfigId"] == "nudge"
    assert sent["platformContext"]["flowInstanceId"] == inst["id"]
    assert sent["platformContext"]["flowInvocationId"] == inst["invocation_id"]


async def test_a_push_step_too_large_for_providers_fails_its_step_with_the_reason(flows, pager, hub, hub_env):
    pager.add("ned", "t1")
    big = copy.deepcopy(STEP_FLOW)
    big["variables"][0]["default"] = "x" * 5000
    await flows.publish("big-nudge", big)
    await flows.start("big-nudge", target={"usersById": ["ned"]}, payload={})
    await flows.run_jobs()
    assert pager.sent == []
    [inst] = await instances_of(hub, hub_env.id, "big-nudge")
    assert inst["status"] == "failed"
    assert inst["error"].startswith("step 'nudge': the push payload is "), inst["error"]


async def test_a_card_whose_push_is_too_large_for_providers_fails_its_step_with_the_reason(
        flows, pager, hub, hub_env):
    pager.add("nia", "t1")
    await flows.publish("approve", PUSH_FLOW)
    payload = {"variables": {"amount": "x" * 3000}, "notificationDetail": {"note": "y" * 900}}
    await flows.start("approve", target={"usersById": ["nia"]}, payload=payload)
    await flows.run_jobs()
    [inst] = await instances_of(hub, hub_env.id, "approve")
    assert inst["status"] == "failed"
    reason = "step 'send': the push of card template 'approve': the push payload is "
    assert inst["error"].startswith(reason), inst["error"]
    assert await flows.cards(userId="nia") == [] and await notifications(flows, userId="nia") == []
    assert pager.sent == []


async def test_metrics_show_devices_and_send_outcomes(flows, pager, hub_client):
    pager.add("ola", "t1")
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "ola")
    text = (await hub_client.get("/metrics")).text
    assert 'hub_push_sends{provider="pager",status="sent"} 1.0' in text
    assert 'hub_push_devices{platform="android",state="valid"} 1.0' in text


async def test_erasing_a_customer_erases_their_notifications_and_delivery_log(flows, pager, hub, hub_env):
    pager.add("pat", "t1")
    pager.add("quinn", "t2")
    await flows.publish("approve", PUSH_FLOW)
    await send_card(flows, "pat")
    await send_card(flows, "quinn")
    erased = await flows.client.delete(f"/v1/{hub_env.id}/users/pat", headers=hub_env.headers(),
                                       params={"erase": "true"})
    assert erased.status_code in (200, 204), erased.text
    assert await notifications(flows, userId="pat") == []
    d = tables.push_delivery.c
    async with hub.db.connect() as conn:
        logged = {u for (u,) in await conn.execute(select(d.user_id).where(d.environment_id == hub_env.id))}
    assert logged == {"quinn"}
