"""Settings of the workbench plugin, read from ``HUB_WORKBENCH_*`` (or ``[workbench]`` in hub.toml)."""

from __future__ import annotations

from typing import Literal

import msgspec


class WorkbenchSettings(msgspec.Struct, kw_only=True, frozen=True):
    session_hours: float = 12.0
    """HUB_WORKBENCH_SESSION_HOURS: how long a staff sign-in lasts before asking again."""
    cookie_secure: str = "auto"
    """HUB_WORKBENCH_COOKIE_SECURE: ``auto`` (Secure when the request came over HTTPS, as told by
    the scheme or ``X-Forwarded-Proto``), ``always`` or ``never``."""
    login_max_failures: int = 5
    """HUB_WORKBENCH_LOGIN_MAX_FAILURES: failed sign-ins allowed per email (and per client address)
    in the window before further attempts get 429."""
    login_window_seconds: int = 900
    """HUB_WORKBENCH_LOGIN_WINDOW_SECONDS: the window of the failed sign-in limit."""
    min_password_length: int = 12
    """HUB_WORKBENCH_MIN_PASSWORD_LENGTH: shortest password ``hub staff create`` accepts."""
    oidc_issuer: str = ""
    """HUB_WORKBENCH_OIDC_ISSUER: an OpenID Connect issuer URL (its discovery document is read
    from ``/.well-known/openid-configuration``); empty: password sign-in only."""
    oidc_client_id: str = ""
    """HUB_WORKBENCH_OIDC_CLIENT_ID: the client id registered with the issuer."""
    oidc_client_secret: str = ""
    """HUB_WORKBENCH_OIDC_CLIENT_SECRET: the client secret registered with the issuer."""
    oidc_token_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    """HUB_WORKBENCH_OIDC_TOKEN_AUTH_METHOD: how Hub authenticates to the token endpoint,
    ``client_secret_basic`` (HTTP Basic) or ``client_secret_post`` (in the form)."""
    oidc_trust_unverified_email: bool = False
    """HUB_WORKBENCH_OIDC_TRUST_UNVERIFIED_EMAIL: accept an ID token without ``email_verified``
    (some providers only issue addresses they own and never send the claim). ``email_verified:
    false`` is refused either way."""
    oidc_label: str = "Sign in with single sign-on"
    """HUB_WORKBENCH_OIDC_LABEL: the text of the sign-in button."""
    public_base_url: str = ""
    """HUB_WORKBENCH_PUBLIC_BASE_URL: the UI's public base URL, used for the OIDC redirect URI
    (empty: the request's own base)."""
