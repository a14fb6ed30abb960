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
    salesforce_api_version: str = "59.0"
    """HUB_SFMC_SALESFORCE_API_VERSION: the Salesforce API version the profile sync uses."""
    salesforce_ca_file: str = ""
    """HUB_SFMC_SALESFORCE_CA_FILE: a PEM file of CAs to trust for Salesforce (empty: the usual ones)."""
    sync_http_timeout_seconds: float = 20.0
    """HUB_SFMC_SYNC_HTTP_TIMEOUT_SECONDS: longest wait for one Salesforce call (login, a page)."""
    sync_batch_size: int = 2000
    """HUB_SFMC_SYNC_BATCH_SIZE: records per page asked of Salesforce (200-2,000)."""
    sync_lease_seconds: float = 120.0
    """HUB_SFMC_SYNC_LEASE_SECONDS: how long a run may go without finishing a page before another
    run may take over (after a worker is killed mid-run)."""
    sync_run_seconds: float = 30.0
    """HUB_SFMC_SYNC_RUN_SECONDS: a run that lasts longer hands over to a new one after its current
    page, so one job never holds a worker for long; capped to ``HUB_JOB_TIMEOUT_SECONDS`` less the
    HTTP timeout and 5 s."""
