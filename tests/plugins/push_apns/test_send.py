"""hub_send_push through APNs: headers and payload, routing, provider tokens, every error of
PROTOCOLS.md §5, GOAWAY and lost connections, against the HTTP/2 fake."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from hub_plugins.push_apns import sender
from hub_plugins.push_apns.settings import PushApnsSettings
from hub_plugins.push_apns.tokens import ProviderToken, sign
from tests.fakes.apns import TOKEN_FORMAT, device_token
from tests.plugins.push_apns.conftest import device, notification, own_push


async def test_an_ios_notification_reaches_apns_with_its_headers_and_payload(push, apns):
    await push.configure()
    dev = device()
    before = int(time.time())
    result = await push.send(dev, notificationId="n-1234", data={"cardInstanceId": "c1", "flowId": "f"},
                             priority="high", ttlSeconds=600, collapseKey="c1")
    assert result["status"] == "sent", result
    assert result["provider"] == "apns" and result["retryAfter"] is None
    (received,) = apns.notifications
    assert received.token == dev["token"]
    assert received.payload == {
        "aps": {"alert": {"title": "Card waiting", "body": "A payment needs your approval"},
                "sound": "default"},
        "cardInstanceId": "c1", "flowId": "f",
    }
    headers = received.headers
    assert headers["apns-topic"] == push.key.topic
    assert headers["apns-push-type"] == "alert" and headers["apns-priority"] == "10"
    assert before + 600 <= int(headers["apns-expiration"]) <= int(time.time()) + 600
    assert headers["apns-collapse-id"] == "c1"
    expected_id = str(uuid.uuid5(sender.APNS_ID_NAMESPACE, f"n-1234\n{dev['deviceId']}"))
    assert headers["apns-id"] == expected_id == result["providerMessageId"]


async def test_the_provider_token_is_an_es256_jwt_of_the_key_and_team(push, apns):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    scheme, _, token = apns.notifications[0].headers["authorization"].partition(" ")
    assert scheme == "bearer"
    public = ECKey.import_key(push.key.key_p8).as_pem(private=False)
    decoded = jwt.decode(token, ECKey.import_key(public), algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256" and decoded.header["kid"] == push.key.key_id
    assert decoded.claims["iss"] == push.key.team_id
    assert abs(decoded.claims["iat"] - time.time()) < 5


async def test_a_resend_of_the_same_notification_keeps_its_apns_id(push, apns):
    await push.configure()
    dev = device()
    first = await push.send(dev, notificationId="n-same")
    again = await push.send(dev, notificationId="n-same")
    other = await push.send(device(), notificationId="n-same")
    assert first["providerMessageId"] == again["providerMessageId"] != other["providerMessageId"]


async def test_normal_priority_no_ttl_and_no_collapse_key(push, apns):
    await push.configure()
    result = await push.send(priority="normal", ttlSeconds=None, collapseKey=None, data={})
    assert result["status"] == "sent", result
    headers = apns.notifications[0].headers
    assert headers["apns-priority"] == "5"
    assert "apns-expiration" not in headers and "apns-collapse-id" not in headers
    assert set(apns.notifications[0].payload) == {"aps"}


async def test_a_ttl_of_zero_means_deliver_now_or_never(push, apns):
    await push.configure()
    assert (await push.send(ttlSeconds=0))["status"] == "sent"
    assert apns.notifications[0].headers["apns-expiration"] == "0"


async def test_a_long_collapse_key_is_cut_to_64_bytes_without_splitting_a_character(push, apns):
    await push.configure()
    result = await push.send(collapseKey="é" * 40)  # 80 bytes
    assert result["status"] == "sent", result
    assert apns.notifications[0].headers["apns-collapse-id"] == "é" * 32


async def test_a_data_key_named_aps_does_not_replace_the_alert(push, apns):
    await push.configure()
    assert (await push.send(data={"aps": "x", "k": "v"}))["status"] == "sent"
    payload = apns.notifications[0].payload
    assert payload["aps"]["alert"]["title"] == "Card waiting" and payload["k"] == "v"


async def test_the_device_s_apns_topic_overrides_the_configured_topic(push, apns):
    await push.configure()
    apns.topics[push.key.team_id].add("com.example.bank.beta")  # another app of the same team
    result = await push.send(device(apnsTopic="com.example.bank.beta"))
    assert result["status"] == "sent", result
    assert apns.notifications[0].headers["apns-topic"] == "com.example.bank.beta"


async def test_other_platforms_and_environments_without_apns_configuration_get_none(push, apns):
    assert await push.send(device("ios")) is None
    await push.configure()
    assert await push.send(device("android")) is None
    assert await push.send(device("web")) is None
    assert await push.send(device("ios"), env="elsewhere") is None
    assert apns.requests == 0


async def test_removing_the_configuration_stops_apns_sends(push, apns, hub_client, hub_env):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    response = await hub_client.delete(f"/v1/{hub_env.id}/push/providers/apns", headers=hub_env.headers())
    assert response.status_code == 204
    assert await push.send() is None


def test_the_apns_host_follows_the_configuration_s_environment_unless_overridden():
    default = PushApnsSettings()
    assert default.url_for("production") == "https://api.push.apple.com"
    assert default.url_for("sandbox") == "https://api.sandbox.push.apple.com"
    proxy = PushApnsSettings(base_url="https://apns-proxy.internal:8443/")
    assert proxy.url_for("sandbox") == proxy.url_for("production") == "https://apns-proxy.internal:8443"


def test_the_token_refresh_age_is_held_within_apple_s_window():
    assert PushApnsSettings().token_refresh == 3000
    assert PushApnsSettings(token_refresh_seconds=60).token_refresh == 1200
    assert PushApnsSettings(token_refresh_seconds=7200).token_refresh == 3300


async def test_ios_goes_through_fcm_when_the_environment_routes_it_there(monkeypatch, hub_settings, apns):
    from tests.fakes.fcm import running as fcm_running

    async with fcm_running() as google:
        monkeypatch.setenv("HUB_PUSH_FCM_BASE_URL", google.fcm.url)
        settings = msgspec.structs.replace(hub_settings, allow_private_urls=True)  # FCM's token URI
        async with own_push(settings, apns, monkeypatch) as push:
            await push.configure()
            dev = device()
            assert (await push.send(dev))["provider"] == "apns"
            body = {"serviceAccount": google.oauth.service_account(), "platforms": ["android", "ios"]}
            saved = await push.client.put(f"/v1/{push.env.id}/push/providers/fcm", headers=push.env.headers(),
                                          json=body)
            assert saved.status_code == 200, saved.text
            result = await push.send(dev)
    assert result["provider"] == "fcm" and result["status"] == "sent", result
    assert len(apns.notifications) == 1
    assert [m.message["token"] for m in google.fcm.messages] == [dev["token"]]


# --- provider tokens --------------------------------------------------------------------------


async def test_the_provider_token_is_minted_once_and_reused(push, apns, hub):
    await push.configure()
    for _ in range(5):
        assert (await push.send())["status"] == "sent"
    assert len(apns.provider_tokens) == 1
    assert len({n.headers["authorization"] for n in apns.notifications}) == 1
    assert 'hub_push_apns_token_mints_total{reason="new"} 1.0' in hub.metrics.render().decode()


async def test_concurrent_sends_share_one_provider_token(push, apns):
    await push.configure()
    results = await asyncio.gather(*(push.send() for _ in range(50)))
    assert [r["status"] for r in results] == ["sent"] * 50
    assert len(apns.provider_tokens) == 1


async def test_the_provider_token_is_replaced_once_it_is_old(push, apns, hub):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    state = sender.runtime(hub)
    (cached,) = state.tokens._tokens.values()
    cached.issued_at -= 2999  # just under HUB_PUSH_APNS_TOKEN_REFRESH_SECONDS (3000)
    assert (await push.send())["status"] == "sent"
    assert len(apns.provider_tokens) == 1
    cached.issued_at -= 2
    assert (await push.send())["status"] == "sent"
    assert len(apns.provider_tokens) == 2
    assert apns.answered == ["200", "200", "200"]  # APNs never saw a stale token
    metrics = hub.metrics.render().decode()
    assert 'hub_push_apns_token_mints_total{reason="age"} 1.0' in metrics


async def test_an_expired_provider_token_is_minted_again_and_the_notification_resent(push, apns, hub):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    apns.fail("ExpiredProviderToken")
    result = await push.send()
    assert result["status"] == "sent", result
    assert apns.answered == ["200", "ExpiredProviderToken", "200"]
    assert len(apns.provider_tokens) == 2
    assert 'hub_push_apns_token_mints_total{reason="refused"} 1.0' in hub.metrics.render().decode()


async def test_a_token_apns_finds_over_an_hour_old_is_replaced(push, apns, hub):
    # The clocks disagree: Hub thinks its token fresh, APNs finds its iat over an hour ago.
    await push.configure()
    assert (await push.send())["status"] == "sent"
    state = sender.runtime(hub)
    cfg = await state.config(hub, push.env.id)
    (credential,) = state.tokens._tokens
    state.tokens._tokens[credential] = ProviderToken(sign(cfg, int(time.time()) - 3700), time.time())
    result = await push.send()
    assert result["status"] == "sent", result
    assert apns.answered == ["200", "ExpiredProviderToken", "200"]


async def test_a_second_provider_token_refusal_fails_without_a_third_try(push, apns):
    await push.configure()
    apns.fail("InvalidProviderToken", times=3)
    result = await push.send()
    assert result["status"] == "failed", result
    assert "403 InvalidProviderToken, again with a new provider token" in result["detail"]
    assert "keyId, teamId" in result["detail"]
    assert apns.requests == 2


async def test_a_revoked_key_fails(push, apns):
    await push.configure()
    apns.revoke(push.key.key_id)
    result = await push.send()
    assert result["status"] == "failed", result
    assert apns.answered == ["InvalidProviderToken", "InvalidProviderToken"]


# --- the error table of PROTOCOLS.md §5 ---------------------------------------------------------


@pytest.mark.parametrize(("reason", "retry_after", "status", "wait"), [
    ("Unregistered", None, "invalid_device", None),
    ("ExpiredToken", None, "invalid_device", None),
    ("BadDeviceToken", None, "invalid_device", None),
    ("DeviceTokenNotForTopic", None, "invalid_device", None),
    ("TooManyRequests", 30, "retry", 30.0),
    ("TooManyRequests", None, "retry", 60.0),  # HUB_PUSH_APNS_THROTTLE_RETRY_SECONDS
    ("TooManyProviderTokenUpdates", None, "retry", 60.0),
    ("InternalServerError", 7, "retry", 7.0),
    ("InternalServerError", None, "retry", None),
    ("ServiceUnavailable", 2.5, "retry", 2.5),
    ("ServiceUnavailable", None, "retry", None),
    ("Shutdown", None, "retry", None),
    ("PayloadTooLarge", None, "failed", None),
    ("BadTopic", None, "failed", None),
    ("MissingTopic", None, "failed", None),
    ("TopicDisallowed", None, "failed", None),
    ("BadPriority", None, "failed", None),
    ("BadCollapseId", None, "failed", None),
    ("Forbidden", None, "failed", None),
])
async def test_each_apns_error_maps_to_the_contract(push, apns, reason, retry_after, status, wait):
    await push.configure()
    dev = device()
    apns.fail(reason, token=dev["token"], retry_after=retry_after)
    result = await push.send(dev)
    assert result["status"] == status, result
    assert result["retryAfter"] == wait
    assert result["provider"] == "apns" and result["providerMessageId"] is None
    assert reason in result["detail"]
    assert apns.requests == 1 and len(apns.provider_tokens) == 1  # no resend, no new token
    assert (await push.send(device()))["status"] == "sent"  # scripted for that token only


async def test_an_uninstalled_app_s_token_is_invalid_with_the_date_apns_gives(push, apns):
    await push.configure()
    dev = device()
    apns.unregister(dev["token"], since=1_790_000_000)
    for _ in range(2):
        result = await push.send(dev)
        assert result["status"] == "invalid_device", result
        assert result["detail"].startswith("APNs answered 410 Unregistered: the app was uninstalled")
        assert "(since 2026-09-21T" in result["detail"]


async def test_a_token_apns_finds_malformed_makes_the_device_invalid(push, apns):
    await push.configure()
    result = await push.send(device(token="ab" * 8))  # hexadecimal, but too short for APNs
    assert result["status"] == "invalid_device", result
    assert "BadDeviceToken" in result["detail"] and apns.requests == 1


async def test_a_token_that_is_not_hexadecimal_is_invalid_without_asking_apns(push, apns):
    await push.configure()
    for token in ("not-a-token/../x", "", None):
        dev = device()
        dev["token"] = token
        result = await push.send(dev)
        assert result["status"] == "invalid_device", result
    assert apns.requests == 0


async def test_a_token_of_another_app_is_invalid_for_this_topic(push, apns):
    await push.configure()
    dev = device()
    apns.register_device(dev["token"], "com.example.other")
    result = await push.send(dev)
    assert result["status"] == "invalid_device" and "DeviceTokenNotForTopic" in result["detail"], result


async def test_a_topic_the_team_may_not_push_to_fails(push, apns):
    await push.configure()
    result = await push.send(device(apnsTopic="com.someone.else"))
    assert result["status"] == "failed", result
    assert result["detail"].startswith("APNs answered 400 TopicDisallowed")


# --- connections --------------------------------------------------------------------------------


async def test_a_goaway_is_recovered_on_a_new_connection(monkeypatch, hub_settings, apns):
    async with own_push(hub_settings, apns, monkeypatch, connections="1") as push:
        await push.configure()
        assert (await push.send())["status"] == "sent"
        apns.goaway()
        result = await push.send()
        assert result["status"] == "sent", result
        assert apns.answered == ["200", "GOAWAY", "200"]
        assert apns.connections == 2 and apns.notifications[-1].connection == 2
        assert (await push.send())["status"] == "sent"
        assert apns.connections == 2  # the new connection is kept


async def test_a_goaway_on_a_connection_s_first_stream_is_resent_on_a_new_connection(push, apns):
    await push.configure()
    apns.goaway()  # last stream 0: nothing on that connection was processed
    result = await push.send()
    assert result["status"] == "sent", result
    assert apns.answered == ["GOAWAY", "200"] and apns.notifications[0].connection == 2


async def test_goaways_in_a_row_are_a_retry(monkeypatch, hub_settings, apns):
    async with own_push(hub_settings, apns, monkeypatch, connections="1") as push:
        await push.configure()
        apns.goaway(times=2)
        result = await push.send()
        assert result["status"] == "retry", result
        assert "closed the connection under the send twice (RemoteProtocolError)" in result["detail"]
        assert apns.answered == ["GOAWAY", "GOAWAY"]
        assert (await push.send())["status"] == "sent"


async def test_a_dropped_connection_is_recovered_on_a_new_connection(monkeypatch, hub_settings, apns):
    async with own_push(hub_settings, apns, monkeypatch, connections="1") as push:
        await push.configure()
        assert (await push.send())["status"] == "sent"
        apns.disconnect()
        result = await push.send()
        assert result["status"] == "sent", result
        assert apns.answered == ["200", "dropped", "200"] and apns.connections == 2


async def test_a_connection_lost_twice_is_a_retry(push, apns):
    await push.configure()
    apns.disconnect(times=2)
    result = await push.send()
    assert result["status"] == "retry", result
    assert "closed the connection" in result["detail"] and result["retryAfter"] is None
    assert apns.answered == ["dropped", "dropped"]
    assert (await push.send())["status"] == "sent"


async def test_sends_are_multiplexed_over_a_small_pool_of_http2_connections(push, apns):
    await push.configure()
    apns.delay = 0.3
    results = await asyncio.gather(*(push.send() for _ in range(40)))
    assert [r["status"] for r in results] == ["sent"] * 40
    assert apns.max_in_flight >= 20
    assert apns.connections == 2  # HUB_PUSH_APNS_CONNECTIONS
    per_connection = [sum(1 for n in apns.notifications if n.connection == c) for c in (1, 2)]
    assert per_connection == [20, 20]  # taken in turn


async def test_concurrent_sends_to_one_topic_are_limited(monkeypatch, hub_settings, apns):
    async with own_push(hub_settings, apns, monkeypatch, concurrency_per_topic="3") as push:
        await push.configure()
        apns.delay = 0.05
        results = await asyncio.gather(*(push.send() for _ in range(20)))
    assert [r["status"] for r in results] == ["sent"] * 20
    assert apns.max_in_flight == 3


async def test_the_fake_s_certificate_is_not_trusted_without_the_ca_file(monkeypatch, hub_settings, apns):
    async with own_push(hub_settings, apns, monkeypatch, ca_file="") as push:
        await push.configure()
        result = await push.send()
    assert result["status"] == "retry" and result["detail"] == "APNs unreachable: ConnectError", result
    assert apns.connections == 0


async def test_an_unusable_ca_file_is_a_retry_that_names_the_setting(monkeypatch, hub_settings, apns,
                                                                     tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    async with own_push(hub_settings, apns, monkeypatch, ca_file=str(missing)) as push:
        await push.configure()
        result = await push.send()
    assert result["status"] == "retry", result
    assert result["detail"].startswith(f"HUB_PUSH_APNS_CA_FILE {missing} cannot be used:")
    assert apns.connections == 0


async def test_an_unreachable_apns_is_a_retry(monkeypatch, hub_settings, apns):
    async with own_push(hub_settings, apns, monkeypatch, base_url="https://127.0.0.1:9") as push:
        await push.configure()
        result = await push.send()
    assert result["status"] == "retry" and "unreachable" in result["detail"], result
    assert result["retryAfter"] is None


async def test_the_connections_are_closed_with_the_hub(push, apns, hub):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    state = sender.runtime(hub)
    await hub.close()
    assert state.closed and not state._transports
    assert hub not in sender._runtimes


# --- limits -------------------------------------------------------------------------------------


async def test_a_payload_over_4096_bytes_fails_before_sending(push, apns):
    await push.configure()
    result = await push.send(body="é" * 2100)
    assert result["status"] == "failed", result
    size = int(result["detail"].split()[2])
    assert result["detail"] == f"payload is {size} bytes, APNs allows 4096" and size > 4096
    assert apns.requests == 0


async def test_a_payload_of_exactly_4096_bytes_is_accepted_by_apns(push, apns):
    await push.configure()
    overrides = {"data": {}, "title": "Card waiting"}
    size = len(sender._encode(sender.build_payload(notification("x", body="", **overrides))))
    body = "b" * (4096 - size)
    result = await push.send(**overrides, body=body)
    assert result["status"] == "sent", result
    one_more = await push.send(**overrides, body=body + "b")
    assert one_more["detail"] == "payload is 4097 bytes, APNs allows 4096"
    assert apns.requests == 1


def test_the_tests_device_tokens_are_what_the_fake_accepts():
    # The tests' tokens must be well-formed, or every "sent" above would be an accident.
    assert TOKEN_FORMAT.fullmatch(device_token())
    assert not TOKEN_FORMAT.fullmatch("ab" * 8)
