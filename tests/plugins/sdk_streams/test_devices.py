"""Push devices and the customer's own notification preferences."""

from __future__ import annotations

from hub_plugins.sdk_streams import devices
from tests.plugins.sdk_streams.conftest import bearer

IOS = {"platform": "ios", "token": "a" * 64, "appId": "com.bank.app", "apnsTopic": "com.bank.app"}
ANDROID = {"platform": "android", "token": "fcm-token-1", "appId": "com.bank.app"}


def url(env: str, tail: str = "") -> str:
    return f"/v1/{env}/sdk/devices{tail}"


async def test_devices_are_registered_listed_and_removed(hub_client, hub_env, sdk_signer):
    headers = bearer(sdk_signer, "ana")
    created = await hub_client.post(url(hub_env.id), headers=headers, json=IOS)
    assert created.status_code == 201, created.text
    device = created.json()
    assert (
        device["platform"] == "ios" and device["state"] == "valid" and device["apnsTopic"] == "com.bank.app"
    )
    again = await hub_client.post(url(hub_env.id), headers=headers, json=IOS)
    assert again.status_code == 200 and again.json()["deviceId"] == device["deviceId"]
    await hub_client.post(url(hub_env.id), headers=headers, json=ANDROID)
    listed = (await hub_client.get(url(hub_env.id), headers=headers)).json()["devices"]
    assert {d["platform"] for d in listed} == {"ios", "android"}
    removed = await hub_client.delete(url(hub_env.id, f"/{device['deviceId']}"), headers=headers)
    assert removed.status_code == 204
    assert [
        d["platform"] for d in (await hub_client.get(url(hub_env.id), headers=headers)).json()["devices"]
    ] == ["android"]
    gone = await hub_client.delete(url(hub_env.id, f"/{device['deviceId']}"), headers=headers)
    assert gone.status_code == 404 and gone.json()["errors"][0]["field"] == "path.deviceId"


async def test_bad_registrations_name_the_field(hub_client, hub_env, sdk_signer):
    headers = bearer(sdk_signer, "bo")
    bad = await hub_client.post(url(hub_env.id), headers=headers, json={"platform": "palm", "token": ""})
    assert {e["field"] for e in bad.json()["errors"]} == {"platform", "token"}
    topic = await hub_client.post(url(hub_env.id), headers=headers, json={**ANDROID, "apnsTopic": "x.y"})
    assert topic.status_code == 422 and topic.json()["errors"][0]["field"] == "apnsTopic"
    unknown = await hub_client.post(url(hub_env.id), headers=headers, json={**ANDROID, "color": "red"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "color"


async def test_a_token_registered_by_another_user_moves_to_them(hub, hub_client, hub_env, sdk_signer):
    await hub_client.post(url(hub_env.id), headers=bearer(sdk_signer, "old-owner"), json=ANDROID)
    moved = await hub_client.post(url(hub_env.id), headers=bearer(sdk_signer, "new-owner"), json=ANDROID)
    assert moved.status_code == 200
    assert await devices.list_devices(hub, hub_env.id, "old-owner") == []
    assert len(await devices.list_devices(hub, hub_env.id, "new-owner")) == 1


async def test_push_plugins_see_valid_devices_and_can_invalidate_them(hub, hub_client, hub_env, sdk_signer):
    headers = bearer(sdk_signer, "cy")
    ios = (await hub_client.post(url(hub_env.id), headers=headers, json=IOS)).json()
    await hub_client.post(url(hub_env.id), headers=headers, json=ANDROID)
    assert [d["platform"] for d in await devices.valid_devices(hub, hub_env.id, "cy", ["ios"])] == ["ios"]
    assert await devices.mark_invalid(hub, hub_env.id, ios["deviceId"], "410 Unregistered")
    assert [d["platform"] for d in await devices.valid_devices(hub, hub_env.id, "cy")] == ["android"]
    [listed] = [
        d
        for d in (await hub_client.get(url(hub_env.id), headers=headers)).json()["devices"]
        if d["platform"] == "ios"
    ]
    assert listed["state"] == "invalid" and listed["lastError"] == "410 Unregistered"
    # the app registering the token again makes it valid
    await hub_client.post(url(hub_env.id), headers=headers, json=IOS)
    assert len(await devices.valid_devices(hub, hub_env.id, "cy")) == 2


async def test_a_user_keeps_a_bounded_number_of_devices(hub, hub_client, hub_env, sdk_signer):
    headers = bearer(sdk_signer, "dee")
    for n in range(22):
        await hub_client.post(url(hub_env.id), headers=headers, json={"platform": "web", "token": f"t{n}"})
    kept = await devices.list_devices(hub, hub_env.id, "dee")
    assert len(kept) == 20 and {d["token"] for d in kept} == {f"t{n}" for n in range(2, 22)}


async def test_erasing_the_customer_deletes_their_devices(hub, hub_client, hub_env, sdk_signer, run_jobs):
    await hub_client.post(url(hub_env.id), headers=bearer(sdk_signer, "eve"), json=IOS)
    erased = await hub_client.delete(
        f"/v1/{hub_env.id}/users/eve", params={"erase": "true"}, headers=hub_env.headers()
    )
    assert erased.status_code == 204
    await run_jobs()
    assert await devices.list_devices(hub, hub_env.id, "eve") == []
    assert await hub.redis.get(f"sdk_streams:seen:{hub_env.id}:eve") is None


async def test_preferences_are_read_and_changed_by_the_customer(hub_client, hub_env, sdk_signer):
    headers, prefs = bearer(sdk_signer, "fay"), f"/v1/{hub_env.id}/sdk/preferences"
    assert (await hub_client.get(prefs, headers=headers)).json() == {
        "timezone": None,
        "notificationsEnabled": True,
        "notificationWindows": {},
    }
    changed = await hub_client.put(
        prefs,
        headers=headers,
        json={
            "timezone": "Europe/Paris",
            "notificationWindows": {"monday": [{"from": "09:00", "to": "18:00"}]},
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["timezone"] == "Europe/Paris"
    off = await hub_client.put(prefs, headers=headers, json={"notificationsEnabled": False})
    assert off.json() == {
        "timezone": "Europe/Paris",
        "notificationsEnabled": False,
        "notificationWindows": {"monday": [{"from": "09:00", "to": "18:00"}]},
    }
    profile = (await hub_client.get(f"/v1/{hub_env.id}/users/fay", headers=hub_env.headers())).json()
    assert profile["preferences"]["notificationsEnabled"] is False


async def test_bad_preferences_name_the_field(hub_client, hub_env, sdk_signer):
    headers, prefs = bearer(sdk_signer, "gus"), f"/v1/{hub_env.id}/sdk/preferences"
    bad = await hub_client.put(prefs, headers=headers, json={"timezone": "Mars/Olympus", "colour": "red"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"timezone", "colour"}
    windows = await hub_client.put(
        prefs, headers=headers, json={"notificationWindows": {"monday": [{"from": "18:00", "to": "09:00"}]}}
    )
    assert windows.json()["errors"][0]["field"] == "notificationWindows.monday[0]"
    not_object = await hub_client.put(prefs, headers=headers, json=[1])
    assert not_object.status_code == 422
