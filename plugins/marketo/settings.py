"""Settings of the marketo plugin, read from ``HUB_MARKETO_*`` (or ``[marketo]`` in hub.toml)."""

from __future__ import annotations

import msgspec


class MarketoSettings(msgspec.Struct, kw_only=True, frozen=True):
    public_base_url: str = ""
    """HUB_MARKETO_PUBLIC_BASE_URL: base of the service URL Marketo installs (empty: the base URL of
    the request that asks for it)."""
    provider_name: str = "Hub"
    """HUB_MARKETO_PROVIDER_NAME: the service provider's name in Marketo (``info.x-providerName``)."""
    support_contact: str = "https://github.com/hub-engage/hub"
    """HUB_MARKETO_SUPPORT_CONTACT: e-mail address or URL shown as support (``info.x-supportContact``)."""
    max_leads: int = 1000
    """HUB_MARKETO_MAX_LEADS: most leads one submitAsyncAction call may hold (Marketo sends up to 1,000)."""
    max_body_bytes: int = 16_777_216
    """HUB_MARKETO_MAX_BODY_BYTES: largest submitAsyncAction body accepted."""
    chunk_leads: int = 500
    """HUB_MARKETO_CHUNK_LEADS: leads a worker starts per transaction (progress commits with them)."""
    job_seconds: float = 10.0
    """HUB_MARKETO_JOB_SECONDS: how long one job starts chunks before handing over to the next."""
    callback_timeout_seconds: float = 30.0
    """HUB_MARKETO_CALLBACK_TIMEOUT_SECONDS: time allowed for Marketo to answer a callback."""
    callback_tries_per_run: int = 3
    """HUB_MARKETO_CALLBACK_TRIES_PER_RUN: attempts one job makes (tenacity, exponential backoff and
    jitter) before handing over to a later job."""
    callback_max_attempts: int = 12
    """HUB_MARKETO_CALLBACK_MAX_ATTEMPTS: attempts in all before a callback is recorded as failed."""
    callback_backoff_base_seconds: float = 1.0
    """HUB_MARKETO_CALLBACK_BACKOFF_BASE_SECONDS: wait after the first failed attempt; doubles per failure."""
    callback_max_backoff_seconds: float = 900.0
    """HUB_MARKETO_CALLBACK_MAX_BACKOFF_SECONDS: longest wait between two attempts."""
