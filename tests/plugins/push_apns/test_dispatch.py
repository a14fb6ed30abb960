"""A flow's card reaches the APNs fake: iOS devices registered through the streams plugin, sent by
the core dispatcher through push_apns, refused tokens marked invalid, 429 retried after
Retry-After with the same apns-id."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from hub.services import push as push_service
from hub_plugins.push_apns.sender import APNS_ID_NAMESPACE
from hub_plugins.sdk_streams import devices
from tests.fakes.apns import device_token

FLOW = {
    "name": "Card with push",
    "cardTemplates": [{"id": "hello", "name": "Hello", "priority": 8,
                       "elements": [{"type": "headline", "text": "Payment waiting"}],
                       "push": {"title": "Payment waiting", "body": "Open the app to approve it"}}],
    "steps": [{"id": "send", "type": "card", "template": "hello"}],
}


async def start(hub_client: Any, env: Any, *users: str) -> None:
    headers = env.headers()
    created = await hub_client.post(f"/v1/{env.id}/flows", headers=headers,
                                    json={"id": "hello", "definition": FLOW})
    assert created.status_code in (201, 409), created.text
    published = await hub_client.post(f"/v1/{env.id}/flows/hello/publish", headers=headers)
    assert published.status_code == 200, published.text
    started = await hub_client.post(f"/v1/{env.id}/action-flow/hello/start", headers=headers,
                                    json={"flows": [{"target": {"usersById": list(users)}}]})
    assert started.status_code == 202, started.text


async def shown(hub_client: Any, env: Any, user: str) -> list[dict[str, Any]]:
    response = await hub_client.get(f"/v1/{env.id}/push/notifications", headers=env.headers(),
                                    params={"userId": user})
    assert response.status_code == 200, response.text
    return list(response.json())


def expected_apns_id(notification: dict[str, Any], device: dict[str, Any]) -> str:
    return str(uuid.uuid5(APNS_ID_NAMESPACE, f"{notification['notificationId']}\n{device['deviceId']}"))


async def test_a_card_with_push_reaches_apns_for_each_ios_device(hub, hub_client, hub_env, push, apns,
                                                               run_jobs):
    await push.configure()
    apns.topics[push.key.team_id].add("com.example.bank.business")
    phone, _ = await devices.register_device(hub, hub_env.id, "ada", platform="ios", token=device_token())
    tablet, _ = await devices.register_device(hub, hub_env.id, "ada", platform="ios", token=device_token(),
                                              apns_topic="com.example.bank.business")
    await devices.register_device(hub, hub_env.id, "ada", platform="android", token="x" * 40)  # no FCM set up
    await start(hub_client, hub_env, "ada")
    await run_jobs()
    received = {n.token: n for n in apns.notifications}
    assert set(received) == {phone["token"], tablet["token"]}
    assert received[phone["token"]].payload["aps"]["alert"] == {"title": "Payment waiting",
                                                                "body": "Open the app to approve it"}
    assert received[phone["token"]].headers["apns-topic"] == "com.example.bank"
    assert received[tablet["token"]].headers["apns-topic"] == "com.example.bank.business"
    assert received[phone["token"]].headers["apns-priority"] == "10"
    [notification] = await shown(hub_client, hub_env, "ada")
    assert notification["status"] == "sent" and notification["sent"] == 2
    by_device = {d["deviceId"]: d for d in notification["deliveries"]}
    assert by_device[phone["deviceId"]]["provider"] == "apns"
    assert by_device[phone["deviceId"]]["providerMessageId"] == expected_apns_id(notification, phone)
    health = (await hub_client.get(f"/v1/{hub_env.id}/push/health", headers=hub_env.headers())).json()
    assert health["sends"]["apns"] == {"sent": 2} and health["devices"]["ios"] == {"valid": 2, "invalid": 0}


async def test_an_unregistered_token_is_marked_invalid_in_the_streams_plugin(hub, hub_client, hub_env, push,
                                                                            apns, run_jobs):
    await push.configure()
    gone = device_token()
    apns.unregister(gone)
    registered, _ = await devices.register_device(hub, hub_env.id, "bo", platform="ios", token=gone)
    await start(hub_client, hub_env, "bo")
    await run_jobs()
    [device] = await devices.list_devices(hub, hub_env.id, "bo")
    assert device["deviceId"] == registered["deviceId"] and device["state"] == "invalid"
    assert "410 Unregistered" in device["lastError"]
    [notification] = await shown(hub_client, hub_env, "bo")
    assert notification["status"] == "failed" and notification["deliveries"][0]["status"] == "invalid_device"
    assert await devices.valid_devices(hub, hub_env.id, "bo") == []


async def test_too_many_requests_is_retried_no_sooner_than_retry_after(hub, hub_client, hub_env, push, apns,
                                                                       run_jobs, clock):
    await push.configure()
    token = device_token()
    device, _ = await devices.register_device(hub, hub_env.id, "cy", platform="ios", token=token)
    apns.fail("TooManyRequests", token=token, retry_after=90)
    await start(hub_client, hub_env, "cy")
    await run_jobs()
    [waiting] = await shown(hub_client, hub_env, "cy")
    assert waiting["status"] == "scheduled" and "TooManyRequests" in waiting["detail"]
    due = datetime.fromisoformat(waiting["dueAt"].replace("Z", "+00:00"))
    assert due >= clock.current + timedelta(seconds=90)
    clock.set(due + timedelta(seconds=31))
    await push_service.sweep_pushes({"hub": hub})
    await run_jobs()
    [sent] = await shown(hub_client, hub_env, "cy")
    assert sent["status"] == "sent" and sent["attempts"] == 2
    assert apns.answered == ["TooManyRequests", "200"]
    [received] = apns.notifications
    assert received.token == token
    assert received.headers["apns-id"] == expected_apns_id(sent, device)  # the resend is the same one
