"""The APNs fake refuses what Apple refuses: checked with a plain HTTP/2 client, so that the
sender's "sent" results elsewhere mean something (tests/fakes/apns.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.fakes.apns import ApnsKey, FakeApns, device_token

BODY = b'{"aps": {"alert": {"title": "t", "body": "b"}}}'


def provider_token(key: ApnsKey, *, iat: int | None = None, iss: str | None = None,
                   kid: str | None = None, pem: str | None = None) -> str:
    claims = {"iss": iss or key.team_id, "iat": int(time.time()) if iat is None else iat}
    return jwt.encode({"alg": "ES256", "kid": kid or key.key_id}, claims, ECKey.import_key(pem or key.key_p8))


@pytest.fixture
async def client(apns: FakeApns) -> Any:
    async with httpx.AsyncClient(base_url=apns.url, verify=_context(apns), http2=True, http1=False) as client:
        yield client


def _context(apns: FakeApns) -> Any:
    context = httpx.create_ssl_context()
    context.load_verify_locations(apns.ca_file)
    return context


async def post(client: httpx.AsyncClient, key: ApnsKey, *, token: str | None = None, body: bytes = BODY,
               authorization: str | None = None, **headers: str) -> httpx.Response:
    sent = {"authorization": authorization if authorization is not None else f"bearer {provider_token(key)}",
            "apns-topic": key.topic, "apns-push-type": "alert", "apns-priority": "10"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    sent = {name: value for name, value in sent.items() if value}
    return await client.post(f"/3/device/{token or device_token()}", content=body, headers=sent)


def reason(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["reason"]


async def test_a_valid_notification_is_accepted_and_recorded(apns, client):
    key = apns.make_key()
    token = device_token()
    response = await post(client, key, token=token, apns_id="0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
    assert response.status_code == 200 and response.http_version == "HTTP/2"
    assert response.headers["apns-id"] == "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9" and response.content == b""
    (received,) = apns.notifications
    assert received.token == token and received.payload == json.loads(BODY)
    assert received.headers["apns-topic"] == key.topic
    assert len((await post(client, key)).headers["apns-id"]) == 36  # one is made when none is sent


async def test_http_1_1_is_refused(apns):
    async with httpx.AsyncClient(base_url=apns.url, verify=_context(apns)) as http1:
        with pytest.raises(httpx.HTTPError):
            await http1.post(f"/3/device/{device_token()}", content=BODY)
    assert apns.refused_connections == 1 and apns.requests == 0


async def test_provider_tokens_are_verified(apns, client):
    key = apns.make_key()
    other = apns.make_key()
    now = int(time.time())
    assert reason(await post(client, key, authorization="-")) == (403, "MissingProviderToken")
    refused = {
        "not.a.jwt": "InvalidProviderToken",
        provider_token(key, pem=other.key_p8): "InvalidProviderToken",  # signed by another key
        provider_token(key, iss=other.team_id): "InvalidProviderToken",  # another team
        provider_token(key, kid="ZZZZZZZZZZ"): "InvalidProviderToken",  # a key APNs does not know
        provider_token(key, iat=now + 600): "InvalidProviderToken",  # issued in the future
        provider_token(key, iat=now - 3700): "ExpiredProviderToken",  # over an hour old
    }
    for token, why in refused.items():
        assert reason(await post(client, key, authorization=f"bearer {token}")) == (403, why), token
    recent = provider_token(key, iat=now - 3000)
    assert (await post(client, key, authorization=f"bearer {recent}")).status_code == 200
    apns.revoke(key.key_id)
    assert reason(await post(client, key, authorization=f"bearer {recent}")) == (403, "InvalidProviderToken")


async def test_the_topic_must_be_one_of_the_key_s_team(apns, client):
    key = apns.make_key()
    other = apns.make_key("com.other.app")
    assert reason(await post(client, key, apns_topic="")) == (400, "MissingTopic")
    assert reason(await post(client, key, apns_topic="not a topic")) == (400, "BadTopic")
    assert reason(await post(client, key, apns_topic=other.topic)) == (400, "TopicDisallowed")
    token = device_token()
    apns.register_device(token, "com.example.bank.beta")
    apns.topics[key.team_id].add("com.example.bank.beta")
    assert reason(await post(client, key, token=token)) == (400, "DeviceTokenNotForTopic")
    assert (await post(client, key, token=token, apns_topic="com.example.bank.beta")).status_code == 200


@pytest.mark.parametrize(("headers", "status", "why"), [
    ({"apns_push_type": "banner"}, 400, "InvalidPushType"),
    ({"apns_priority": "7"}, 400, "BadPriority"),
    ({"apns_push_type": "background", "apns_priority": "10"}, 400, "BadPriority"),
    ({"apns_expiration": "tomorrow"}, 400, "BadExpirationDate"),
    ({"apns_collapse_id": "c" * 65}, 400, "BadCollapseId"),
    ({"apns_id": "not-a-uuid"}, 400, "BadMessageId"),
    ({"token": "ab" * 8}, 400, "BadDeviceToken"),
    ({"token": "zz" * 32}, 400, "BadDeviceToken"),
    ({"body": b""}, 400, "PayloadEmpty"),
    ({"body": b"[1, 2]"}, 400, "PayloadEmpty"),
    ({"body": b'{"alert": "no aps"}'}, 400, "PayloadEmpty"),
    ({"body": b'{"aps": {"alert": "' + b"x" * 4090 + b'"}}'}, 413, "PayloadTooLarge"),
])
async def test_headers_tokens_and_payloads_are_checked(apns, client, headers, status, why):
    key = apns.make_key()
    assert reason(await post(client, key, **headers)) == (status, why)
    assert apns.notifications == []


async def test_a_payload_of_4096_bytes_is_the_largest_accepted(apns, client):
    key = apns.make_key()
    body = b'{"aps": {"alert": "' + b"x" * (4096 - 22) + b'"}}'
    assert len(body) == 4096 and (await post(client, key, body=body)).status_code == 200
    one_more = body.replace(b'"x', b'"xx', 1)
    assert len(one_more) == 4097
    assert reason(await post(client, key, body=one_more)) == (413, "PayloadTooLarge")


async def test_paths_methods_and_repeated_headers(apns, client):
    key = apns.make_key()
    auth = {"authorization": f"bearer {provider_token(key)}", "apns-topic": key.topic}
    assert reason(await client.post("/3/devices/x", content=BODY, headers=auth)) == (404, "BadPath")
    assert reason(await client.post("/3/device/", content=BODY, headers=auth)) == (400, "MissingDeviceToken")
    assert reason(await client.get(f"/3/device/{device_token()}", headers=auth)) == (405, "MethodNotAllowed")
    twice = httpx.Headers([*auth.items(), ("apns-topic", key.topic)])
    assert reason(await client.post(f"/3/device/{device_token()}", content=BODY, headers=twice)) == (
        400, "DuplicateHeaders")


async def test_scripted_answers_and_unregistered_tokens(apns, client):
    key = apns.make_key()
    token = device_token()
    apns.fail("TooManyRequests", retry_after=12)
    response = await post(client, key)
    assert reason(response) == (429, "TooManyRequests") and response.headers["retry-after"] == "12"
    apns.unregister(token, since=1_790_000_000)
    response = await post(client, key, token=token)
    assert response.status_code == 410 and response.json() == {"reason": "Unregistered",
                                                               "timestamp": 1_790_000_000_000}
    with pytest.raises(ValueError, match="unknown APNs reason"):
        apns.fail("NoSuchReason")
