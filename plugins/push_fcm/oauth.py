"""OAuth 2.0 access tokens for FCM: a JWT signed with the service account's key, exchanged at its
``token_uri`` (grant ``urn:ietf:params:oauth:grant-type:jwt-bearer``, PROTOCOLS.md §4).

One :class:`TokenCache` per process and Hub: a token is reused until ``token_refresh_margin``
before it expires, and only one exchange per credential is in flight at a time (concurrent
senders wait for it instead of each asking Google).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from hub.logging import get_logger
from hub_plugins.push_fcm.config import FcmConfig
from hub_plugins.push_fcm.errors import retry_after

log = get_logger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class TokenError(Exception):
    """The token endpoint did not give a token. ``permanent``: the credential was refused
    (``invalid_grant``...), so retrying will not help until the configuration changes."""

    def __init__(self, detail: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass
class AccessToken:
    value: str
    expires_at: float  # time.monotonic()

    def __repr__(self) -> str:
        return f"AccessToken(expires_at={self.expires_at})"


def sign_assertion(config: FcmConfig, lifetime: int, issued_at: int | None = None) -> str:
    """The RS256 JWT the token endpoint exchanges; scope goes inside the claims."""
    iat = int(time.time()) if issued_at is None else issued_at
    header = {"alg": "RS256", "typ": "JWT"}
    if config.private_key_id:
        header["kid"] = config.private_key_id
    claims = {"iss": config.client_email, "scope": SCOPE, "aud": config.token_uri,
              "iat": iat, "exp": iat + min(lifetime, 3600)}
    return jwt.encode(header, claims, RSAKey.import_key(config.private_key))


class TokenCache:
    """Access tokens per credential (:attr:`FcmConfig.credential_key`), refreshed single-flight."""

    def __init__(self, client: httpx.AsyncClient, *, margin: float, lifetime: int,
                 on_refresh: Any = None) -> None:
        self._client = client
        self._margin = margin
        self._lifetime = lifetime
        self._tokens: dict[str, AccessToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._on_refresh = on_refresh or (lambda outcome: None)

    def _fresh(self, key: str) -> AccessToken | None:
        token = self._tokens.get(key)
        if token is not None and time.monotonic() < token.expires_at - self._margin:
            return token
        return None

    async def get(self, config: FcmConfig) -> str:
        """A valid access token for ``config``'s credential; raises :class:`TokenError`."""
        key = config.credential_key
        token = self._fresh(key)
        if token is not None:
            return token.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one exchange in flight per credential: the others find its result
            token = self._fresh(key)
            if token is None:
                token = await self._exchange(config)
                self._tokens[key] = token
            return token.value

    def invalidate(self, config: FcmConfig, value: str) -> None:
        """Forget ``value`` (FCM answered 401 with it); a newer token already cached is kept, so
        many sends failing with the same old token cause one refresh."""
        key = config.credential_key
        token = self._tokens.get(key)
        if token is not None and token.value == value:
            del self._tokens[key]

    async def _exchange(self, config: FcmConfig) -> AccessToken:
        assertion = sign_assertion(config, self._lifetime)
        started = time.monotonic()
        try:
            response = await self._client.post(
                config.token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion},
                headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            self._on_refresh("error")
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}", permanent=False) from None
        if response.status_code != 200:
            self._on_refresh("refused")
            raise _refusal(response)
        try:
            body = response.json()
            value = body["access_token"]
            expires_in = float(body.get("expires_in", 3600))
            if not isinstance(value, str) or not value:
                raise ValueError("empty access_token")
        except (ValueError, KeyError, TypeError):
            self._on_refresh("error")
            raise TokenError("token endpoint answered 200 without a usable access_token",
                             permanent=False) from None
        self._on_refresh("ok")
        log.info("push_fcm_token_refreshed", project=config.project_id, expires_in=expires_in)
        return AccessToken(value, started + expires_in)


def _refusal(response: httpx.Response) -> TokenError:
    try:
        body = response.json()
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
    except ValueError:
        error, description = "", ""
    detail = f"token endpoint answered {response.status_code}" + (f" {error}" if error else "") + (
        f": {description[:200]}" if description else "")
    transient = response.status_code == 429 or response.status_code >= 500
    return TokenError(detail, permanent=not transient, retry_after=retry_after(response))
