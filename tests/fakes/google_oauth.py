"""A Google OAuth 2.0 token endpoint on loopback, for service-account (JWT-bearer) grants.

It checks what Google checks (written from Google's documentation, independently of Hub's
signing code): ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``, the assertion's RS256
signature against the public key of the account named by ``iss``, the ``scope``, ``aud`` (this
endpoint's URL), ``iat`` (not in the future) and ``exp`` (after now, at most one hour after
``iat``). It answers ``{"access_token", "expires_in", "token_type"}`` with an opaque token, or
``400 {"error": "invalid_grant", "error_description"}``. :meth:`GoogleOAuth.check_access_token`
lets the FCM fake accept only tokens issued here and not expired.

Make an account with :meth:`GoogleOAuth.service_account` (a fresh RSA key; the JSON is what the
Firebase console downloads). Script failures with :meth:`GoogleOAuth.fail`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MAX_LIFETIME = 3600
CLOCK_SKEW = 60


@dataclass
class Issued:
    client_email: str
    project_id: str
    expires_at: float  # time.time()


@dataclass
class GoogleOAuth:
    """The fake's state: accounts (public keys), issued tokens, the failure script."""

    url: str = ""  # http://127.0.0.1:PORT, set when served
    expires_in: int = 3600
    accounts: dict[str, tuple[RSAKey, str]] = field(default_factory=dict)  # email -> (key, project)
    issued: dict[str, Issued] = field(default_factory=dict)
    requests: int = 0  # token requests received, accepted or not
    refusals: list[str] = field(default_factory=list)  # error_description of each refusal
    script: list[tuple[int, str]] = field(default_factory=list)  # (status, error) to answer next
    delay: float = 0.0  # seconds to wait before answering (to show single-flight refreshes)

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def service_account(self, project_id: str = "hub-test-project", *, bits: int = 2048) -> dict[str, Any]:
        """A new service account of ``project_id`` whose key this endpoint knows."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        email = f"firebase-adminsdk-{secrets.token_hex(3)}@{project_id}.iam.gserviceaccount.com"
        public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        self.accounts[email] = (RSAKey.import_key(public), project_id)
        return {"type": "service_account", "project_id": project_id,
                "private_key_id": secrets.token_hex(20), "private_key": pem, "client_email": email,
                "client_id": str(secrets.randbelow(10**20)),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
                "universe_domain": "googleapis.com"}

    def fail(self, status: int = 400, error: str = "invalid_grant", times: int = 1) -> None:
        """Answer the next ``times`` token requests with ``status`` and ``error``."""
        self.script.extend([(status, error)] * times)

    def expire_all(self) -> None:
        """Make every issued token expired (FCM will answer 401 to them)."""
        for issued in self.issued.values():
            issued.expires_at = 0.0

    def check_access_token(self, token: str) -> Issued | None:
        issued = self.issued.get(token)
        if issued is None or issued.expires_at <= time.time():
            return None
        return issued

    # --- the endpoint -------------------------------------------------------------------------

    def _grant(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type", [""])[0]
        if grant_type != GRANT_TYPE:
            return 400, {"error": "unsupported_grant_type",
                         "error_description": f"Invalid grant_type: {grant_type}"}
        assertion = form.get("assertion", [""])[0]
        try:
            unverified = json.loads(_b64(assertion.split(".")[1]))
            iss = unverified["iss"]
        except (IndexError, ValueError, KeyError, TypeError):
            return 400, _invalid("Invalid JWT: malformed assertion")
        account = self.accounts.get(iss) if isinstance(iss, str) else None
        if account is None:
            return 400, _invalid("Invalid JWT Signature.")  # what Google says for an unknown account
        key, project_id = account
        try:
            token = jwt.decode(assertion, key, algorithms=["RS256"])
        except (JoseError, ValueError):
            return 400, _invalid("Invalid JWT Signature.")
        if token.header.get("alg") != "RS256":
            return 400, _invalid("Invalid JWT: alg must be RS256")
        claims, now = token.claims, time.time()
        scopes = str(claims.get("scope", "")).split()
        if FCM_SCOPE not in scopes:
            return 400, {"error": "invalid_scope", "error_description": f"scope must include {FCM_SCOPE}"}
        if claims.get("aud") != self.token_uri:
            return 400, _invalid(f"Invalid JWT: aud must be {self.token_uri}")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return 400, _invalid("Invalid JWT: iat and exp must be integers")
        if iat > now + CLOCK_SKEW or exp <= now - CLOCK_SKEW:
            return 400, _invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                                 "reasonable timeframe. Check your iat and exp values")
        if exp - iat > MAX_LIFETIME:
            return 400, _invalid("Invalid JWT: exp is more than one hour after iat")
        access = "ya29.fake-" + secrets.token_urlsafe(32)
        self.issued[access] = Issued(iss, project_id, now + self.expires_in)
        return 200, {"access_token": access, "expires_in": self.expires_in, "token_type": "Bearer"}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.requests += 1
        if scope["path"] != "/token" or scope["method"] != "POST":
            await respond(send, 404, {"error": "not_found", "error_description": "POST /token"})
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            status, error = self.script.pop(0)
            self.refusals.append(f"scripted {error}")
            await respond(send, status, {"error": error, "error_description": "scripted by the test"})
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
        if not content_type.startswith("application/x-www-form-urlencoded"):
            status, answer = 400, {"error": "invalid_request",
                                   "error_description": "send application/x-www-form-urlencoded"}
        else:
            status, answer = self._grant(parse_qs(body.decode(errors="replace")))
        if status != 200:
            self.refusals.append(str(answer.get("error_description")))
        await respond(send, status, answer)


def _invalid(description: str) -> dict[str, str]:
    return {"error": "invalid_grant", "error_description": description}


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    sent = [(b"content-type", b"application/json; charset=UTF-8"),
            (b"content-length", str(len(raw)).encode())]
    sent.extend((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": sent})
    await send({"type": "http.response.body", "body": raw})
