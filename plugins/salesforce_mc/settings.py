"""Settings of the salesforce_mc plugin, read from ``HUB_SFMC_*`` (or ``[sfmc]`` in hub.toml)."""

from __future__ import annotations

import msgspec


class SfmcSettings(msgspec.Struct, kw_only=True, frozen=True):
    public_base_url: str = ""
    """HUB_SFMC_PUBLIC_BASE_URL: base of activity URLs (empty: the settings request's own base)."""
    max_body_bytes: int = 262_144
    """HUB_SFMC_MAX_BODY_BYTES: largest execute or lifecycle body accepted."""
    config_cache_seconds: float = 5.0
    """HUB_SFMC_CONFIG_CACHE_SECONDS: how long a process caches an environment's activity settings."""
