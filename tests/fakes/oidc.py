"""A fake OpenID Connect provider on loopback: discovery, JWKS, authorization and token endpoints.

It checks what a provider checks (OpenID Connect Core 1.0 §3.1, RFC 7636 for PKCE):

- ``/authorize``: ``response_type=code``, a known ``client_id``, the registered ``redirect_uri``
  exactly, ``scope`` containing ``openid``, a ``state``, a ``nonce``, and a PKCE
  ``code_challenge`` with ``code_challenge_method=S256``. The signed-in user is whoever
  :attr:`FakeOidc.user` says (there is no login form); it redirects back with a one-use code.
- ``/token``: ``grant_type=authorization_code``, client authentication (``client_secret_basic``
  or ``client_secret_post``), the code (once, not expired), the same ``redirect_uri``, and a
  ``code_verifier`` whose SHA-256 is the challenge. Errors are RFC 6749 §5.2 bodies
  (``invalid_client``, ``invalid_grant``, ``invalid_request``).
- The ID token is RS256-signed with the key in ``/jwks``; ``iss``, ``aud``, ``exp``, ``iat``,
  ``sub``, ``nonce``, ``email``, ``email_verified``. :meth:`FakeOidc.tamper` scripts a bad one
  (wrong nonce, wrong audience, expired, signed by another key).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.fcm import _serve
from tests.fakes.google_oauth import read_body, respond


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    email: str
    expires: float


@dataclass
class FakeOidc:
    client_id: str = "hub-staff"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uri: str = ""
    user: dict[str, Any] = field(default_factory=lambda: {"email": "ana@example.com", "email_verified": True})
    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    tampered: str | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: int = 0
    client_auth_methods: list[str] = field(default_factory=list)

    def tamper(self, how: str | None) -> None:
        """``nonce``, ``audience``, ``expired``, ``key`` or ``None`` for honest tokens."""
        self.tampered = how

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/.well-known/openid-configuration":
            await respond(send, 200, {
                "issuer": self.url, "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})
        elif path == "/jwks":
            await respond(send, 200, {"keys": [self.key.as_dict(private=False)]})
        elif path == "/authorize":
            await self._authorize(scope, send)
        elif path == "/token" and scope["method"] == "POST":
            status, body = self._token(scope, await read_body(receive))
            await respond(send, status, body, {"Cache-Control": "no-store"})
        else:
            await respond(send, 404, {"error": "not_found"})

    async def _authorize(self, scope: dict[str, Any], send: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        problems = [name for name, ok in (
            ("response_type", query.get("response_type") == "code"),
            ("client_id", query.get("client_id") == self.client_id),
            ("redirect_uri", query.get("redirect_uri") == self.redirect_uri),
            ("scope", "openid" in query.get("scope", "").split()),
            ("state", bool(query.get("state"))), ("nonce", bool(query.get("nonce"))),
            ("code_challenge", len(query.get("code_challenge", "")) == 43),
            ("code_challenge_method", query.get("code_challenge_method") == "S256")) if not ok]
        if problems:
            await respond(send, 400, {"error": "invalid_request", "error_description": f"bad {problems[0]}"})
            return
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(self.client_id, query["redirect_uri"], query["code_challenge"],
                                  query["nonce"], self.user["email"], time.time() + 60)
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", location.encode())]})
        await send({"type": "http.response.body", "body": b""})

    def _client_auth(self, scope: dict[str, Any], form: dict[str, str]) -> tuple[str, str]:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        basic = headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            self.client_auth_methods.append("client_secret_basic")
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            return user, password
        self.client_auth_methods.append("client_secret_post")
        return form.get("client_id", ""), form.get("client_secret", "")

    def _token(self, scope: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        client_id, secret = self._client_auth(scope, form)
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.client_id, "sub": "user-" + grant.email, "iat": now,
                  "exp": now + 300, "nonce": grant.nonce, **self.user}
        key = self.key
        if self.tampered == "nonce":
            claims["nonce"] = "another"
        elif self.tampered == "audience":
            claims["aud"] = "someone-else"
        elif self.tampered == "expired":
            claims.update(iat=now - 4000, exp=now - 3000)
        elif self.tampered == "key":
            key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}


@contextlib.asynccontextmanager
async def running(port: int = 0) -> AsyncIterator[FakeOidc]:
    """Serve a fake provider on loopback in this event loop; set ``redirect_uri`` before use."""
    fake = FakeOidc()
    server, task, fake.url = await _serve(fake, port)
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
