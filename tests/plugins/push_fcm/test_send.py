"""hub_send_push through FCM: messages, routing, access tokens, every error of PROTOCOLS.md §4."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub_plugins.push_fcm import errors, sender
from tests.fakes.fcm import device_token, running
from tests.plugins.push_fcm.conftest import device, own_push


async def test_an_android_notification_reaches_fcm_with_its_android_options(push, google):
    await push.configure()
    dev = device("android")
    result = await push.send(dev, notificationId="n-1234", data={"cardInstanceId": "c1", "flowId": "f"},
                             priority="high", ttlSeconds=600, collapseKey="c1")
    assert result["status"] == "sent", result
    assert result["provider"] == "fcm" and result["retryAfter"] is None
    (received,) = google.fcm.messages
    assert result["providerMessageId"].startswith("projects/hub-test-project/messages/")
    assert received.project == "hub-test-project"
    assert received.message == {
        "token": dev["token"],
        "notification": {"title": "Card waiting", "body": "A payment needs your approval"},
        "data": {"cardInstanceId": "c1", "flowId": "f"},
        "android": {"priority": "HIGH", "ttl": "600s", "collapse_key": "c1"},
        "fcm_options": {"analytics_label": "n-1234"},
    }
    assert received.headers["content-type"].startswith("application/json")


async def test_a_web_notification_carries_webpush_ttl_and_urgency(push, google):
    await push.configure()
    result = await push.send(device("web"), priority="normal", ttlSeconds=120, collapseKey=None)
    assert result["status"] == "sent", result
    message = google.fcm.messages[0].message
    assert message["webpush"] == {"headers": {"Urgency": "normal", "TTL": "120"}}
    assert "android" not in message and "apns" not in message


async def test_data_values_are_sent_as_strings_and_the_label_is_made_fcm_safe(push, google):
    await push.configure()
    result = await push.send(device(), data={"count": 3, "ok": True, "s": "x"}, ttlSeconds=None,
                             notificationId="a/b c" + "x" * 80)
    assert result["status"] == "sent", result
    message = google.fcm.messages[0].message
    assert message["data"] == {"count": "3", "ok": "true", "s": "x"}
    assert "ttl" not in message["android"]
    label = message["fcm_options"]["analytics_label"]
    assert label.startswith("a_b_cx") and len(label) == 50


async def test_ios_goes_through_fcm_only_when_the_environment_says_so(push, google):
    await push.configure()
    assert await push.send(device("ios")) is None  # APNs' device, or another plugin's
    await push.configure(platforms=["android", "ios"])
    result = await push.send(device("ios"), priority="normal", collapseKey="c9")
    assert result["status"] == "sent", result
    apns = google.fcm.messages[-1].message["apns"]["headers"]
    assert apns["apns-priority"] == "5" and apns["apns-collapse-id"] == "c9"
    assert int(apns["apns-expiration"]) > time.time()
    assert await push.send(device("web")) is None  # web was left out of this configuration


async def test_an_environment_without_fcm_configuration_and_other_platforms_get_none(push, google):
    assert await push.send(device("android")) is None
    await push.configure()
    assert await push.send(device("huawei")) is None
    assert await push.send(device("android"), env="elsewhere") is None
    assert google.fcm.requests == 0 and google.oauth.requests == 0


async def test_removing_the_configuration_stops_fcm_sends(push, google, hub_client, hub_env):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    response = await hub_client.delete(f"/v1/{hub_env.id}/push/providers/fcm", headers=hub_env.headers())
    assert response.status_code == 204
    assert await push.send() is None


# --- access tokens ----------------------------------------------------------------------------


async def test_the_access_token_is_fetched_once_and_reused(push, google):
    await push.configure()
    for _ in range(5):
        assert (await push.send())["status"] == "sent"
    assert google.oauth.requests == 1 and len(google.oauth.issued) == 1
    (token,) = google.oauth.issued
    assert {m.headers["authorization"] for m in google.fcm.messages} == {f"Bearer {token}"}


async def test_concurrent_sends_share_one_token_refresh(push, google):
    await push.configure()
    google.oauth.delay = 0.2  # every sender arrives while the exchange is in flight
    results = await asyncio.gather(*(push.send() for _ in range(50)))
    assert [r["status"] for r in results] == ["sent"] * 50
    assert google.oauth.requests == 1


async def test_the_token_is_refreshed_before_it_expires(push, google):
    await push.configure()
    google.oauth.expires_in = 301  # the default margin is 300 s: stale for Hub after 1 s
    assert (await push.send())["status"] == "sent"
    assert (await push.send())["status"] == "sent"
    assert google.oauth.requests == 1
    await asyncio.sleep(1.1)
    assert (await push.send())["status"] == "sent"
    assert google.oauth.requests == 2
    assert google.fcm.answered == ["200", "200", "200"]  # FCM never saw an expired token


async def test_a_refused_credential_fails_and_an_unreachable_token_endpoint_retries(push, google):
    await push.configure()
    google.oauth.fail(400, "invalid_grant")
    result = await push.send()
    assert result["status"] == "failed" and "invalid_grant" in result["detail"], result
    google.oauth.fail(503, "backend_error")
    result = await push.send()
    assert result["status"] == "retry" and "503" in result["detail"], result
    assert (await push.send())["status"] == "sent"
    assert google.fcm.requests == 1


async def test_a_key_google_no_longer_knows_is_refused_by_the_fake_oauth(push, google):
    await push.configure()
    google.oauth.accounts.clear()  # the key was deleted in the Google Cloud console
    result = await push.send()
    assert result["status"] == "failed", result
    assert "invalid_grant" in result["detail"] and "Invalid JWT Signature" in result["detail"]
    assert google.oauth.refusals == ["Invalid JWT Signature."]


async def test_a_401_refreshes_the_token_once_and_resends(push, google):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    google.fcm.fail("UNAUTHENTICATED")
    result = await push.send()
    assert result["status"] == "sent", result
    assert google.oauth.requests == 2 and google.fcm.answered == ["200", "UNAUTHENTICATED", "200"]


async def test_an_expired_access_token_is_replaced_after_fcm_refuses_it(push, google):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    google.oauth.expire_all()  # revoked, or the clocks disagree: FCM answers 401
    assert (await push.send())["status"] == "sent"
    assert google.fcm.answered == ["200", "UNAUTHENTICATED", "200"]


async def test_a_second_401_fails_without_a_third_try(push, google):
    await push.configure()
    google.fcm.fail("UNAUTHENTICATED", times=3)
    result = await push.send()
    assert result["status"] == "failed" and "401" in result["detail"], result
    assert google.fcm.requests == 2 and google.oauth.requests == 2


# --- the error table of PROTOCOLS.md §4 ---------------------------------------------------------


@pytest.mark.parametrize(("code", "retry_after", "status", "wait"), [
    ("UNREGISTERED", None, "invalid_device", None),
    ("INVALID_ARGUMENT", None, "invalid_device", None),  # about the token
    ("INVALID_ARGUMENT_DATA", None, "failed", None),  # about our message: not the device's fault
    ("QUOTA_EXCEEDED", 30, "retry", 60.0),  # back off at least a minute, whatever Retry-After says
    ("QUOTA_EXCEEDED", 90, "retry", 90.0),  # ... and no sooner than Retry-After
    ("QUOTA_EXCEEDED", None, "retry", 60.0),
    ("INTERNAL", 7, "retry", 7.0),
    ("INTERNAL", None, "retry", None),
    ("UNAVAILABLE", 2.5, "retry", 2.5),
    ("UNAVAILABLE", None, "retry", None),
    ("SENDER_ID_MISMATCH", None, "invalid_device", None),  # another project's token
    ("THIRD_PARTY_AUTH_ERROR", None, "failed", None),
])
async def test_each_fcm_error_maps_to_the_contract(push, google, code, retry_after, status, wait):
    await push.configure()
    dev = device()
    google.fcm.fail(code, token=dev["token"], retry_after=retry_after)
    result = await push.send(dev)
    assert result["status"] == status, result
    assert result["retryAfter"] == wait
    assert result["provider"] == "fcm" and result["providerMessageId"] is None
    assert code.removesuffix("_DATA") in result["detail"]
    assert google.fcm.requests == 1 and google.oauth.requests == 1  # no resend, no refresh
    assert (await push.send(device()))["status"] == "sent"  # scripted for that token only


async def test_a_token_fcm_finds_malformed_makes_the_device_invalid(push, google):
    await push.configure()
    result = await push.send(device(token="not-a-token"))
    assert result["status"] == "invalid_device", result
    assert "registration token" in result["detail"]


async def test_an_uninstalled_app_s_token_is_invalid_every_time(push, google):
    await push.configure()
    dev = device()
    google.fcm.unregister(dev["token"])
    for _ in range(2):
        assert (await push.send(dev))["status"] == "invalid_device"


async def test_a_reserved_data_key_is_our_bug_not_the_device_s(push, google):
    await push.configure()
    result = await push.send(data={"from": "hub"})
    assert result["status"] == "failed", result
    assert "Invalid data payload key: from" in result["detail"]


async def test_a_network_error_is_a_retry(push, google):
    await push.configure()
    sender.runtime(push.hub).base_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    result = await push.send()
    assert result["status"] == "retry" and "unreachable" in result["detail"], result
    assert result["retryAfter"] is None


def test_retry_after_reads_seconds_and_http_dates():
    import httpx

    def wait(value: str) -> float | None:
        return errors.retry_after(httpx.Response(429, headers={"Retry-After": value}))

    assert wait("12") == 12.0
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 90))
    assert 85 <= wait(later) <= 91
    assert wait("soon") is None
    assert errors.retry_after(httpx.Response(503)) is None


# --- limits -----------------------------------------------------------------------------------


async def test_a_payload_over_4096_bytes_fails_before_sending(push, google):
    await push.configure()
    result = await push.send(body="é" * 2100)
    assert result["status"] == "failed", result
    size = int(result["detail"].split()[2])
    assert result["detail"] == f"payload is {size} bytes, FCM allows 4096" and size > 4096
    assert google.fcm.requests == 0


async def test_a_payload_of_exactly_4096_bytes_is_accepted_by_fcm(push, google):
    await push.configure()
    dev = device()
    overrides = {"notificationId": "n-edge", "data": {}, "collapseKey": "c"}
    size = sender.payload_size(sender.build_message(
        {**overrides, "body": "", "title": "Card waiting", "priority": "high", "ttlSeconds": 3600}, dev))
    body = "b" * (4096 - size)
    result = await push.send(dev, **overrides, body=body)
    assert result["status"] == "sent", result
    assert len(google.fcm.messages) == 1
    one_more = await push.send(dev, **overrides, body=body + "b")
    assert one_more["detail"] == "payload is 4097 bytes, FCM allows 4096"


async def test_concurrent_sends_to_one_project_are_limited(monkeypatch, hub_settings, google):
    async with own_push(hub_settings, google, monkeypatch, concurrency_per_project="3") as push:
        await push.configure()
        assert (await push.send())["status"] == "sent"  # the token is fetched
        google.fcm.delay = 0.05
        results = await asyncio.gather(*(push.send() for _ in range(20)))
    assert [r["status"] for r in results] == ["sent"] * 20
    assert google.fcm.max_in_flight == 3


@pytest.fixture
async def over_http2(monkeypatch, hub_settings):
    """The FCM fake over HTTP/2 (h2c) and a Push whose Hub speaks HTTP/2 to it."""
    async with running(h2c=True) as google, own_push(hub_settings, google, monkeypatch,
                                                      http2_prior_knowledge="true") as push:
        yield google, push


async def test_sends_are_multiplexed_over_http2(over_http2):
    google, push = over_http2
    await push.configure()
    assert (await push.send())["status"] == "sent"  # the token is fetched
    google.fcm.delay = 0.3
    results = await asyncio.gather(*(push.send() for _ in range(30)))
    assert [r["status"] for r in results] == ["sent"] * 30
    assert {m.http_version for m in google.fcm.messages} == {"2"}
    assert google.fcm.max_in_flight >= 10 and google.fcm.connections == 1  # multiplexed
    google.fcm.fail("UNAVAILABLE", retry_after=3)
    assert (await push.send())["retryAfter"] == 3.0  # errors read the same over HTTP/2


async def test_the_http_client_is_closed_with_the_hub(push, google, hub):
    await push.configure()
    assert (await push.send())["status"] == "sent"
    state = sender.runtime(hub)
    await hub.close()
    assert state.closed and state.token_client.is_closed
    assert hub not in sender._runtimes


async def test_token_refreshes_are_counted_in_metrics(push, google, hub):
    await push.configure()
    google.oauth.fail(400, "invalid_grant")
    await push.send()
    await push.send()
    metrics = hub.metrics.render().decode()
    assert 'hub_push_fcm_token_refreshes_total{outcome="ok"} 1.0' in metrics
    assert 'hub_push_fcm_token_refreshes_total{outcome="refused"} 1.0' in metrics


async def test_a_fresh_device_token_format_is_what_the_fake_accepts():
    # The tests' tokens must be well-formed, or every "sent" above would be an accident.
    from tests.fakes.fcm import TOKEN_FORMAT

    assert TOKEN_FORMAT.fullmatch(device_token())
    assert not TOKEN_FORMAT.fullmatch("not-a-token")


# --- connections (HTTP/2) ------------------------------------------------------------------------


async def test_a_goaway_is_recovered_on_a_new_connection(over_http2):
    google, push = over_http2
    await push.configure()
    assert (await push.send())["status"] == "sent"
    google.fcm.goaway()
    result = await push.send()
    assert result["status"] == "sent", result
    assert google.fcm.answered == ["200", "GOAWAY", "200"] and google.fcm.connections == 2
    assert (await push.send())["status"] == "sent"
    assert google.fcm.connections == 2  # the new connection is kept
    assert len(google.fcm.messages) == 3


async def test_goaways_in_a_row_are_a_retry_and_nothing_is_marked_invalid(over_http2):
    google, push = over_http2
    await push.configure()
    google.fcm.goaway(times=2)
    result = await push.send()
    assert result["status"] == "retry", result
    assert result["detail"] == "FCM closed the connection under the send twice (RemoteProtocolError)"
    assert google.fcm.answered == ["GOAWAY", "GOAWAY"] and google.fcm.messages == []
    assert (await push.send())["status"] == "sent"


async def test_a_dropped_connection_is_recovered_on_a_new_connection(over_http2):
    google, push = over_http2
    await push.configure()
    assert (await push.send())["status"] == "sent"
    google.fcm.disconnect()
    result = await push.send()
    assert result["status"] == "sent", result
    assert google.fcm.answered == ["200", "dropped", "200"] and google.fcm.connections == 2
