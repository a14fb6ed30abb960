"""Settings of the sdk_streams plugin, read from ``HUB_SDK_STREAMS_*`` (or ``[sdk_streams]`` in hub.toml)."""

from __future__ import annotations

import msgspec


class SdkStreamsSettings(msgspec.Struct, kw_only=True, frozen=True):
    jwt_leeway_seconds: int = 60
    """HUB_SDK_STREAMS_JWT_LEEWAY_SECONDS: clock skew allowed when checking exp, nbf and iat."""
    jwks_cache_seconds: int = 300
    """HUB_SDK_STREAMS_JWKS_CACHE_SECONDS: how long keys fetched from a JWKS URL are reused."""
    jwks_timeout_seconds: float = 5.0
    """HUB_SDK_STREAMS_JWKS_TIMEOUT_SECONDS: how long fetching a JWKS URL may take."""
    key_cache_seconds: float = 5.0
    """HUB_SDK_STREAMS_KEY_CACHE_SECONDS: how long a process reuses an environment's SDK keys (and
    tokens it verified with them): a deleted key stops working in every process within this."""
    max_keys: int = 20
    """HUB_SDK_STREAMS_MAX_KEYS: most SDK keys one environment may register."""
    seen_interval_seconds: int = 60
    """HUB_SDK_STREAMS_SEEN_INTERVAL_SECONDS: a customer's last-seen time is written at most this often."""
    devices_per_user: int = 20
    """HUB_SDK_STREAMS_DEVICES_PER_USER: devices kept per customer (least recently registered go first)."""
    poll_seconds: int = 15
    """HUB_SDK_STREAMS_POLL_SECONDS: polling interval the feed suggests to SDKs without a socket."""
    feed_limit: int = 100
    """HUB_SDK_STREAMS_FEED_LIMIT: most cards one feed answer holds."""
    events_batch_limit: int = 100
    """HUB_SDK_STREAMS_EVENTS_BATCH_LIMIT: most SDK analytics events in one POST."""
    socket_heartbeat_seconds: float = 25.0
    """HUB_SDK_STREAMS_SOCKET_HEARTBEAT_SECONDS: how often a socket is pinged."""
    socket_replay_events: int = 1000
    """HUB_SDK_STREAMS_SOCKET_REPLAY_EVENTS: events kept per user for clients that reconnect."""
    socket_replay_ttl_seconds: int = 604800
    """HUB_SDK_STREAMS_SOCKET_REPLAY_TTL_SECONDS: how long a user's event log is kept."""
    socket_send_queue: int = 256
    """HUB_SDK_STREAMS_SOCKET_SEND_QUEUE: frames buffered for one socket before it is closed as too slow."""
    demo_key_file: str = ""
    """HUB_SDK_STREAMS_DEMO_KEY_FILE: PEM private key that signs the SDK demo page's tokens (``hub dev``
    sets it). Empty (the default; keep it so in production): ``/sdk/demo`` and its routes answer 404."""
    demo_env: str = "demo"
    """HUB_SDK_STREAMS_DEMO_ENV: the environment the SDK demo page shows (its test users only)."""
    demo_flow: str = "fraud-alert"
    """HUB_SDK_STREAMS_DEMO_FLOW: the flow the demo page's "send me a card" button starts."""
