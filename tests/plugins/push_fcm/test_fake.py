"""The Google OAuth and FCM fakes refuse what Google refuses: checked with a plain httpx client,
so that the sender's "sent" results elsewhere mean something (tests/fakes/google_oauth.py,
tests/fakes/fcm.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.fcm import FakeGoogle, device_token
from tests.fakes.google_oauth import FCM_SCOPE, GRANT_TYPE


def assertion(account: dict[str, Any], token_uri: str, *, key_pem: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    values = {"iss": account["client_email"], "scope": FCM_SCOPE, "aud": token_uri, "iat": now,
              "exp": now + 3600, **claims}
    key = RSAKey.import_key(key_pem or account["private_key"])
    return jwt.encode({"alg": "RS256", "typ": "JWT"}, values, key)


def other_key() -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


async def exchange(client: httpx.AsyncClient, google: FakeGoogle, signed: str, *,
                   grant_type: str = GRANT_TYPE) -> httpx.Response:
    return await client.post(google.oauth.token_uri, data={"grant_type": grant_type, "assertion": signed})


async def access_token(client: httpx.AsyncClient, google: FakeGoogle, account: dict[str, Any]) -> str:
    response = await exchange(client, google, assertion(account, google.oauth.token_uri))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# --- the OAuth token endpoint ------------------------------------------------------------------


async def test_a_well_signed_assertion_gets_a_bearer_access_token(google, client):
    account = google.oauth.service_account()
    response = await exchange(client, google, assertion(account, google.oauth.token_uri))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert google.oauth.check_access_token(answer["access_token"]).project_id == "hub-test-project"


# Times are offsets from the moment the test runs (not from collection, which may be many
# minutes earlier in a long run); None leaves the claim at assertion()'s default.
@pytest.mark.parametrize(("claims", "iat", "exp", "error", "description"), [
    ({"scope": "https://www.googleapis.com/auth/cloud-platform"}, None, None, "invalid_scope",
     "scope must include"),
    ({"aud": "https://oauth2.googleapis.com/token"}, None, None, "invalid_grant", "aud must be"),
    ({}, -7200, -3600, "invalid_grant", "short-lived"),  # expired
    ({}, 600, 4200, "invalid_grant", "short-lived"),  # issued in the future
    ({}, None, 7200, "invalid_grant", "more than one hour"),
])
async def test_wrong_claims_are_refused(google, client, claims, iat, exp, error, description):
    account = google.oauth.service_account()
    now = int(time.time())
    times = {name: now + offset for name, offset in (("iat", iat), ("exp", exp)) if offset is not None}
    response = await exchange(client, google, assertion(account, google.oauth.token_uri, **claims, **times))
    assert response.status_code == 400
    assert response.json()["error"] == error and description in response.json()["error_description"]
    assert google.oauth.issued == {}


async def test_a_signature_by_another_key_or_an_unknown_account_is_refused(google, client):
    account = google.oauth.service_account()
    forged = assertion(account, google.oauth.token_uri, key_pem=other_key())
    unknown = assertion({**account, "client_email": "someone@else.iam.gserviceaccount.com"},
                        google.oauth.token_uri)
    for signed in (forged, unknown, "not.a-jwt", forged.rsplit(".", 1)[0] + ".AAAA"):
        response = await exchange(client, google, signed)
        assert response.status_code == 400, signed
        assert response.json()["error"] == "invalid_grant"
    assert google.oauth.issued == {}


async def test_another_grant_type_or_a_json_body_is_refused(google, client):
    account = google.oauth.service_account()
    signed = assertion(account, google.oauth.token_uri)
    response = await exchange(client, google, signed, grant_type="client_credentials")
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    response = await client.post(google.oauth.token_uri, json={"grant_type": GRANT_TYPE, "assertion": signed})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# --- messages:send -------------------------------------------------------------------------------


def message(token: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"message": {"token": token or device_token(), "notification": {"title": "t", "body": "b"},
                        **extra}}


async def send(client: httpx.AsyncClient, google: FakeGoogle, body: Any, *, project: str = "hub-test-project",
               authorization: str | None = None, content_type: str = "application/json") -> httpx.Response:
    headers = {"content-type": content_type}
    if authorization is not None:
        headers["authorization"] = authorization
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(f"{google.fcm.url}/v1/projects/{project}/messages:send", content=content,
                             headers=headers)


def problem(response: httpx.Response) -> tuple[int, str, str | None]:
    """(HTTP status, google.rpc status, the violated field of a BadRequest detail or None)."""
    error = response.json()["error"]
    fields = [v["field"] for d in error.get("details", []) for v in d.get("fieldViolations", [])]
    return response.status_code, error["status"], fields[0] if fields else None


async def test_a_valid_message_is_accepted_and_recorded(google, client):
    bearer = f"Bearer {await access_token(client, google, google.oauth.service_account())}"
    token = device_token()
    response = await send(client, google, message(token, data={"k": "v"}), authorization=bearer)
    assert response.status_code == 200, response.text
    assert response.json()["name"].startswith("projects/hub-test-project/messages/")
    (received,) = google.fcm.messages
    assert received.message["token"] == token and received.message["data"] == {"k": "v"}


async def test_a_missing_unknown_or_expired_bearer_is_401(google, client):
    access = await access_token(client, google, google.oauth.service_account())
    for authorization in (None, access, "Bearer ya29.never-issued", f"Basic {access}"):
        response = await send(client, google, message(), authorization=authorization)
        assert problem(response)[:2] == (401, "UNAUTHENTICATED"), authorization
        assert response.headers["www-authenticate"].startswith("Bearer")
    google.oauth.expire_all()
    response = await send(client, google, message(), authorization=f"Bearer {access}")
    assert problem(response)[:2] == (401, "UNAUTHENTICATED")
    assert google.fcm.messages == []


async def test_another_projects_access_token_is_403(google, client):
    bearer = f"Bearer {await access_token(client, google, google.oauth.service_account('other-project'))}"
    response = await send(client, google, message(), authorization=bearer)
    assert problem(response)[:2] == (403, "PERMISSION_DENIED")


@pytest.mark.parametrize(("body", "content_type", "field"), [
    (message("too-short"), "application/json", "message.token"),
    (message("a" * 40 + "!"), "application/json", "message.token"),
    (message(data={"n": 3}), "application/json", "message.data"),
    (message(data={"google.sent": "x"}), "application/json", "message.data"),
    (message(android={"ttl": "10 minutes"}), "application/json", "message.android.ttl"),
    (message(data={"big": "x" * 4096}), "application/json", "message"),  # over 4096 bytes
    ({"token": device_token()}, "application/json", "message"),  # no message envelope
    (b"{not json", "application/json", "message"),
    (message(), "text/plain", "message"),
])
async def test_a_message_fcm_would_refuse_is_400_naming_the_field(google, client, body, content_type, field):
    bearer = f"Bearer {await access_token(client, google, google.oauth.service_account())}"
    response = await send(client, google, body, authorization=bearer, content_type=content_type)
    assert problem(response) == (400, "INVALID_ARGUMENT", field), response.text
    assert google.fcm.messages == []


async def test_a_payload_of_exactly_4096_bytes_is_accepted(google, client):
    bearer = f"Bearer {await access_token(client, google, google.oauth.service_account())}"
    body = message(data={"big": ""})
    size = len(json.dumps({k: v for k, v in body["message"].items() if k != "token"},
                          separators=(",", ":")).encode())
    body["message"]["data"]["big"] = "x" * (4096 - size)
    assert (await send(client, google, body, authorization=bearer)).status_code == 200
    body["message"]["data"]["big"] += "x"
    refused = await send(client, google, body, authorization=bearer)
    assert problem(refused) == (400, "INVALID_ARGUMENT", "message")


async def test_scripted_errors_carry_the_envelope_and_retry_after(google, client):
    bearer = f"Bearer {await access_token(client, google, google.oauth.service_account())}"
    google.fcm.fail("QUOTA_EXCEEDED", retry_after=30)
    response = await send(client, google, message(), authorization=bearer)
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    [detail] = [d for d in response.json()["error"]["details"] if d.get("errorCode")]
    assert detail["errorCode"] == "QUOTA_EXCEEDED"
    assert (await send(client, google, message(), authorization=bearer)).status_code == 200
