"""Settings of the push_apns plugin, read from ``HUB_PUSH_APNS_*`` (or ``[push_apns]`` in hub.toml)."""

from __future__ import annotations

import msgspec

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
MIN_TOKEN_REFRESH_SECONDS = 1200.0  # Apple refuses new provider tokens more often than every 20 min
MAX_TOKEN_REFRESH_SECONDS = 3300.0  # and tokens older than an hour: keep a margin


class PushApnsSettings(msgspec.Struct, kw_only=True, frozen=True):
    base_url: str = ""
    """HUB_PUSH_APNS_BASE_URL: where ``/3/device/{token}`` is, for every environment (a proxy, or
    the fake). Empty: https://api.push.apple.com, or https://api.sandbox.push.apple.com for a
    configuration whose environment is ``sandbox``."""
    ca_file: str = ""
    """HUB_PUSH_APNS_CA_FILE: a PEM bundle of extra certificate authorities to trust (a private
    proxy's, or the fake's), on top of the system's."""
    connections: int = 2
    """HUB_PUSH_APNS_CONNECTIONS: HTTP/2 connections per APNs host, per process; sends take them
    in turn."""
    concurrency_per_topic: int = 100
    """HUB_PUSH_APNS_CONCURRENCY_PER_TOPIC: most sends in flight at once to one app (apns-topic),
    per process."""
    timeout_seconds: float = 10.0
    """HUB_PUSH_APNS_TIMEOUT_SECONDS: time allowed for APNs to answer."""
    connect_timeout_seconds: float = 5.0
    """HUB_PUSH_APNS_CONNECT_TIMEOUT_SECONDS: time allowed to open a connection (TLS included)."""
    token_refresh_seconds: float = 3000.0
    """HUB_PUSH_APNS_TOKEN_REFRESH_SECONDS: age at which a provider token is replaced, held
    between 1200 and 3300 (Apple refuses tokens renewed more often than every 20 minutes and
    tokens older than an hour)."""
    throttle_retry_seconds: float = 60.0
    """HUB_PUSH_APNS_THROTTLE_RETRY_SECONDS: retryAfter reported for a 429 without Retry-After."""
    config_cache_seconds: float = 5.0
    """HUB_PUSH_APNS_CONFIG_CACHE_SECONDS: how long a process reuses an environment's APNs config:
    a change or removal reaches every process within this."""

    @property
    def token_refresh(self) -> float:
        """``token_refresh_seconds`` held within Apple's window."""
        return min(MAX_TOKEN_REFRESH_SECONDS, max(MIN_TOKEN_REFRESH_SECONDS, self.token_refresh_seconds))

    def url_for(self, environment: str) -> str:
        """The base URL for a configuration of ``environment`` (``sandbox`` or ``production``)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return SANDBOX_URL if environment == "sandbox" else PRODUCTION_URL
