"""A flow's card reaches the FCM fake: devices registered through the streams plugin, sent by the
core dispatcher through push_fcm, refused tokens marked invalid, 429 retried after Retry-After."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hub.services import push as push_service
from hub_plugins.sdk_streams import devices
from tests.fakes.fcm import device_token

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


async def test_a_card_with_push_reaches_fcm_for_each_android_and_web_device(hub, hub_client, hub_env, push,
                                                                          google, run_jobs):
    await push.configure()
    android, web = device_token(), device_token()
    await devices.register_device(hub, hub_env.id, "ada", platform="android", token=android)
    await devices.register_device(hub, hub_env.id, "ada", platform="web", token=web)
    await devices.register_device(hub, hub_env.id, "ada", platform="ios", token="a" * 64)  # no APNs set up
    await start(hub_client, hub_env, "ada")
    await run_jobs()
    sent = {m.message["token"]: m.message for m in google.fcm.messages}
    assert set(sent) == {android, web}
    assert sent[android]["notification"] == {"title": "Payment waiting", "body": "Open the app to approve it"}
    assert sent[android]["android"]["priority"] == "HIGH"
    assert sent[web]["webpush"]["headers"]["Urgency"] == "high"
    [notification] = await shown(hub_client, hub_env, "ada")
    assert notification["status"] == "sent" and notification["sent"] == 2
    by_platform = {d["platform"]: d for d in notification["deliveries"]}
    assert by_platform["android"]["provider"] == "fcm" and by_platform["android"]["providerMessageId"]
    assert by_platform["ios"]["status"] == "unsupported"
    health = (await hub_client.get(f"/v1/{hub_env.id}/push/health", headers=hub_env.headers())).json()
    assert health["sends"]["fcm"] == {"sent": 2}
    assert health["devices"]["android"] == {"valid": 1, "invalid": 0}


async def test_an_unregistered_token_is_marked_invalid_in_the_streams_plugin(hub, hub_client, hub_env, push,
                                                                            google, run_jobs):
    await push.configure()
    gone = device_token()
    google.fcm.unregister(gone)
    registered, _ = await devices.register_device(hub, hub_env.id, "bo", platform="android", token=gone)
    await start(hub_client, hub_env, "bo")
    await run_jobs()
    [device] = await devices.list_devices(hub, hub_env.id, "bo")
    assert device["deviceId"] == registered["deviceId"] and device["state"] == "invalid"
    assert "UNREGISTERED" in device["lastError"]
    [notification] = await shown(hub_client, hub_env, "bo")
    assert notification["status"] == "failed" and notification["deliveries"][0]["status"] == "invalid_device"
    assert await devices.valid_devices(hub, hub_env.id, "bo") == []


async def test_quota_exceeded_is_retried_no_sooner_than_retry_after(hub, hub_client, hub_env, push, google,
                                                                    run_jobs, clock):
    await push.configure()
    token = device_token()
    await devices.register_device(hub, hub_env.id, "cy", platform="android", token=token)
    google.fcm.fail("QUOTA_EXCEEDED", token=token, retry_after=90)
    await start(hub_client, hub_env, "cy")
    await run_jobs()
    [waiting] = await shown(hub_client, hub_env, "cy")
    assert waiting["status"] == "scheduled" and "QUOTA_EXCEEDED" in waiting["detail"]
    due = datetime.fromisoformat(waiting["dueAt"].replace("Z", "+00:00"))
    assert due >= clock.current + timedelta(seconds=90)
    clock.set(due + timedelta(seconds=31))
    await push_service.sweep_pushes({"hub": hub})
    await run_jobs()
    [sent] = await shown(hub_client, hub_env, "cy")
    assert sent["status"] == "sent" and sent["attempts"] == 2
    assert [m.message["token"] for m in google.fcm.messages] == [token]
