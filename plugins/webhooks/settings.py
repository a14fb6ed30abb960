"""Settings of the webhooks plugin, read from ``HUB_WEBHOOKS_*`` (or ``[webhooks]`` in hub.toml)."""

from __future__ import annotations

import msgspec


class WebhooksSettings(msgspec.Struct, kw_only=True, frozen=True):
    # --- inbound trigger endpoints ---
    inbound_max_body_bytes: int = 1_048_576
    """HUB_WEBHOOKS_INBOUND_MAX_BODY_BYTES: largest body a trigger endpoint accepts."""
    inbound_signature_tolerance_seconds: int = 300
    """HUB_WEBHOOKS_INBOUND_SIGNATURE_TOLERANCE_SECONDS: replay window of signed requests."""
    inbound_max_users: int = 1000
    """HUB_WEBHOOKS_INBOUND_MAX_USERS: most user ids one request may map to."""
    inbound_public_url: str = ""
    """HUB_WEBHOOKS_INBOUND_PUBLIC_URL: base of trigger URLs (empty: the management request's own)."""
    inbound_max_secret_grace_seconds: int = 604_800
    """HUB_WEBHOOKS_INBOUND_MAX_SECRET_GRACE_SECONDS: longest time a rotated secret stays valid."""
    # --- outbound analytics webhooks ---
    outbound_batch_size: int = 100
    """HUB_WEBHOOKS_OUTBOUND_BATCH_SIZE: most events in one delivery."""
    outbound_linger_ms: int = 200
    """HUB_WEBHOOKS_OUTBOUND_LINGER_MS: how long a delivery waits for more events to batch."""
    outbound_timeout_seconds: float = 10.0
    """HUB_WEBHOOKS_OUTBOUND_TIMEOUT_SECONDS: time allowed for the receiver to answer."""
    outbound_pause_after_failures: int = 20
    """HUB_WEBHOOKS_OUTBOUND_PAUSE_AFTER_FAILURES: consecutive failed deliveries that pause a subscription."""
    outbound_max_backoff_seconds: int = 3600
    """HUB_WEBHOOKS_OUTBOUND_MAX_BACKOFF_SECONDS: longest wait between two attempts."""
    outbound_backoff_base_seconds: float = 1.0
    """HUB_WEBHOOKS_OUTBOUND_BACKOFF_BASE_SECONDS: wait after the first failure; doubles per failure."""
    outbound_max_subscriptions: int = 50
    """HUB_WEBHOOKS_OUTBOUND_MAX_SUBSCRIPTIONS: most subscriptions per environment."""
    outbound_replay_max_events: int = 100_000
    """HUB_WEBHOOKS_OUTBOUND_REPLAY_MAX_EVENTS: most events one replay may queue."""
    outbound_delivery_log_days: int = 7
    """HUB_WEBHOOKS_OUTBOUND_DELIVERY_LOG_DAYS: how long delivery log rows are kept."""
    outbound_secret_grace_seconds: int = 86_400
    """HUB_WEBHOOKS_OUTBOUND_SECRET_GRACE_SECONDS: how long a rotated-out secret still signs."""
    outbound_subscription_cache_seconds: float = 2.0
    """HUB_WEBHOOKS_OUTBOUND_SUBSCRIPTION_CACHE_SECONDS: how long a worker caches subscriptions."""
