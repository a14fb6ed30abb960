"""Settings of the push_fcm plugin, read from ``HUB_PUSH_FCM_*`` (or ``[push_fcm]`` in hub.toml)."""

from __future__ import annotations

import msgspec


class PushFcmSettings(msgspec.Struct, kw_only=True, frozen=True):
    base_url: str = "https://fcm.googleapis.com"
    """HUB_PUSH_FCM_BASE_URL: where ``/v1/projects/{project}/messages:send`` is (a proxy, or a fake)."""
    http2_prior_knowledge: bool = False
    """HUB_PUSH_FCM_HTTP2_PRIOR_KNOWLEDGE: speak HTTP/2 without TLS (h2c) to an ``http://`` base URL
    (a plain-HTTP proxy, or the test fake). Over https, HTTP/2 is negotiated anyway."""
    allowed_token_hosts: tuple[str, ...] = ("oauth2.googleapis.com",)
    """HUB_PUSH_FCM_ALLOWED_TOKEN_HOSTS: hosts a service account's ``token_uri`` may name
    (ignored, with http allowed too, when HUB_ALLOW_PRIVATE_URLS is set)."""
    concurrency_per_project: int = 100
    """HUB_PUSH_FCM_CONCURRENCY_PER_PROJECT: most sends in flight at once to one Firebase project,
    per process."""
    timeout_seconds: float = 10.0
    """HUB_PUSH_FCM_TIMEOUT_SECONDS: time allowed for FCM or the token endpoint to answer."""
    connect_timeout_seconds: float = 5.0
    """HUB_PUSH_FCM_CONNECT_TIMEOUT_SECONDS: time allowed to open a connection."""
    token_refresh_margin_seconds: float = 300.0
    """HUB_PUSH_FCM_TOKEN_REFRESH_MARGIN_SECONDS: an access token is replaced this long before it
    expires."""
    token_lifetime_seconds: int = 3600
    """HUB_PUSH_FCM_TOKEN_LIFETIME_SECONDS: lifetime asked for in the signed JWT (3600 at most)."""
    quota_retry_seconds: float = 60.0
    """HUB_PUSH_FCM_QUOTA_RETRY_SECONDS: the least a 429 waits before the next try (a longer
    Retry-After wins); below 60 it is 60, as PROTOCOLS.md §4 asks."""
    config_cache_seconds: float = 5.0
    """HUB_PUSH_FCM_CONFIG_CACHE_SECONDS: how long a process reuses an environment's FCM config:
    a change or removal reaches every process within this."""
