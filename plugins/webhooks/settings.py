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
