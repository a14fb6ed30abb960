"""APNs provider tokens: an ES256 JWT signed with the environment's auth key (PROTOCOLS.md §5).

Header ``alg`` ES256 and ``kid`` = key id; claims ``iss`` = team id and ``iat``. One
:class:`TokenCache` per process and Hub: a token is reused until it is
``HUB_PUSH_APNS_TOKEN_REFRESH_SECONDS`` old (Apple refuses tokens renewed more often than every
20 minutes and tokens older than an hour). Minting is synchronous (no await between finding the
cached token stale and storing the new one), so concurrent senders never mint twice: the first
one mints and the others find its token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.jwk import ECKey

from hub.logging import get_logger
from hub_plugins.push_apns.config import ApnsConfig

log = get_logger(__name__)


@dataclass
class ProviderToken:
    value: str
    issued_at: float  # the iat claim, time.time()

    def __repr__(self) -> str:
        return f"ProviderToken(issued_at={self.issued_at})"


def sign(config: ApnsConfig, issued_at: int | None = None, key: ECKey | None = None) -> str:
    """The provider token for ``config``'s key, issued at ``issued_at`` (default now)."""
    iat = int(time.time()) if issued_at is None else issued_at
    return jwt.encode({"alg": "ES256", "kid": config.key_id}, {"iss": config.team_id, "iat": iat},
                      key or ECKey.import_key(config.key_p8))


class TokenCache:
    """Provider tokens per credential (:attr:`ApnsConfig.credential_key`)."""

    def __init__(self, *, refresh_seconds: float, on_mint: Callable[[str], None] | None = None) -> None:
        self._refresh = refresh_seconds
        self._tokens: dict[str, ProviderToken] = {}
        self._keys: dict[str, ECKey] = {}
        self._on_mint = on_mint or (lambda reason: None)

    def get(self, config: ApnsConfig) -> str:
        """A provider token for ``config``'s key, minted when there is none or it is too old.

        Raises ``ValueError`` when the key cannot be read (it was validated on save, so only a
        damaged row does that)."""
        credential = config.credential_key
        token = self._tokens.get(credential)
        if token is not None and time.time() - token.issued_at < self._refresh:
            return token.value
        return self._mint(config, credential, "new" if token is None else "age").value

    def replace(self, config: ApnsConfig, value: str) -> str:
        """APNs refused ``value`` (403 ExpiredProviderToken or InvalidProviderToken): a new token.
        A newer token already cached is returned as it is, so many sends refused with the same
        old token cause one mint."""
        credential = config.credential_key
        token = self._tokens.get(credential)
        if token is not None and token.value != value:
            return token.value
        return self._mint(config, credential, "refused").value

    def _mint(self, config: ApnsConfig, credential: str, reason: str) -> ProviderToken:
        key = self._keys.get(credential)
        if key is None:
            key = self._keys[credential] = ECKey.import_key(config.key_p8)
        issued_at = int(time.time())
        token = self._tokens[credential] = ProviderToken(sign(config, issued_at, key), issued_at)
        self._on_mint(reason)
        log.info("push_apns_token_minted", team=config.team_id, key_id=config.key_id, reason=reason)
        return token
