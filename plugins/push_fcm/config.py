"""An environment's FCM configuration: the service account, validated on save, its key sealed.

:func:`save` checks a service-account JSON (the file the Firebase console downloads) field by
field and raises :class:`ConfigError` naming the field; :func:`view` is what the API and CLI
show (never the key); :func:`load` gives the sender a :class:`FcmConfig` with the key unsealed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import delete, select

from hub.core.clock import now
from hub.db import upsert_statement
from hub.net import UnsafeURL, check_url
from hub.sealing import Sealer
from hub_plugins.push_fcm.settings import PushFcmSettings
from hub_plugins.push_fcm.tables import config as config_table

if TYPE_CHECKING:
    from hub.app import Hub

C = config_table.c
PLATFORMS = ("android", "web", "ios")
DEFAULT_PLATFORMS = ("android", "web")
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
SEALER_PURPOSE = b"hub push fcm v1"
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,61}[a-z0-9]")
_EMAIL = re.compile(r"[^@\s]{1,200}@[A-Za-z0-9.-]{1,100}")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
MIN_RSA_BITS = 2048


class ConfigError(ValueError):
    """A configuration that cannot be saved; ``field`` is its path in the request body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class FcmConfig:
    """What the sender needs, the private key unsealed (never logged, never returned)."""

    environment_id: str
    project_id: str
    client_email: str
    private_key_id: str
    private_key: str = ""
    token_uri: str = DEFAULT_TOKEN_URI
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS

    def __repr__(self) -> str:  # the key stays out of tracebacks and debug output
        return (f"FcmConfig(environment_id={self.environment_id!r}, project_id={self.project_id!r}, "
                f"client_email={self.client_email!r}, private_key_id={self.private_key_id!r})")

    @property
    def credential_key(self) -> str:
        """Identifies the credential (project, account, key) without revealing the key: access
        tokens are cached, and refreshed one at a time, under it."""
        digest = hashlib.sha256(self.private_key.encode()).hexdigest()[:16]
        return f"{self.project_id}|{self.client_email}|{digest}"


def _sealer(hub: Hub) -> Sealer:
    return Sealer(hub.secret_key, purpose=SEALER_PURPOSE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _string(account: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None,
            what: str = "") -> str:
    value = account.get(name)
    field = f"serviceAccount.{name}"
    if value is None:
        raise ConfigError(field, "required")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, "must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(field, f"must be {what}")
    return value


def check_private_key(pem: str) -> RSAPrivateKey:
    """The RSA key of a PEM, or :class:`ConfigError` (the message never quotes the key)."""
    field = "serviceAccount.private_key"
    if "-----BEGIN" not in pem:
        raise ConfigError(field, "must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(field, "is not a readable unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(field, "must be an RSA key (service-account keys are RSA)")
    if key.key_size < MIN_RSA_BITS:
        raise ConfigError(field, f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    return key


async def check_token_uri(uri: str, settings: PushFcmSettings, allow_private: bool) -> None:
    """``token_uri`` must be https on an allowed host; with HUB_ALLOW_PRIVATE_URLS anything http(s)."""
    field = "serviceAccount.token_uri"
    parts = urlsplit(uri)
    if allow_private:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(field, "must be an http(s) URL")
        return
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(field, "must be an https URL")
    if parts.hostname.lower() not in {h.lower() for h in settings.allowed_token_hosts}:
        allowed = ", ".join(settings.allowed_token_hosts) or "none"
        raise ConfigError(field, f"host {parts.hostname} is not allowed (HUB_PUSH_FCM_ALLOWED_TOKEN_HOSTS: "
                                 f"{allowed})")
    try:
        await check_url(uri, allow_private=False)
    except UnsafeURL as exc:
        raise ConfigError(field, str(exc)) from None


async def validate(hub: Hub, account: Any, platforms: Any) -> FcmConfig:
    """A :class:`FcmConfig` (without environment) from a service-account JSON, or :class:`ConfigError`."""
    if not isinstance(account, dict):
        raise ConfigError("serviceAccount", "must be the service-account JSON object")
    if account.get("type") != "service_account":
        raise ConfigError("serviceAccount.type", 'must be "service_account" (a key file of a service '
                                                 "account, from the Firebase console)")
    project_id = _string(account, "project_id", _PROJECT, "a Firebase project id (6-63 lowercase letters, "
                                                          "digits and hyphens)")
    client_email = _string(account, "client_email", _EMAIL, "an e-mail address")
    pem = _string(account, "private_key")
    check_private_key(pem)
    key_id = account.get("private_key_id", "")
    if key_id is None:
        key_id = ""
    if not isinstance(key_id, str) or (key_id and not _KEY_ID.fullmatch(key_id)):
        raise ConfigError("serviceAccount.private_key_id", "must be up to 100 letters, digits, '_' or '-'")
    token_uri = account.get("token_uri", DEFAULT_TOKEN_URI)
    if not isinstance(token_uri, str):
        raise ConfigError("serviceAccount.token_uri", "must be a string")
    await check_token_uri(token_uri, hub.plugin_settings["push_fcm"], hub.settings.allow_private_urls)
    if platforms is None:
        chosen = DEFAULT_PLATFORMS
    else:
        if not isinstance(platforms, list) or not platforms:
            raise ConfigError("platforms", f"must be a non-empty list of {', '.join(PLATFORMS)}")
        for i, platform in enumerate(platforms):
            if platform not in PLATFORMS:
                raise ConfigError(f"platforms[{i}]", f"must be one of {', '.join(PLATFORMS)}")
        chosen = tuple(p for p in PLATFORMS if p in platforms)
    return FcmConfig("", project_id, client_email, key_id, pem, token_uri, chosen)


def view(row: Any) -> dict[str, Any]:
    """What the API and CLI show of a configuration: never the key."""
    return {"environmentId": row["environment_id"], "projectId": row["project_id"],
            "clientEmail": row["client_email"], "privateKeyId": row["private_key_id"] or None,
            "tokenUri": row["token_uri"], "platforms": list(row["platforms"]),
            "createdAt": _iso(row["created_at"]), "updatedAt": _iso(row["updated_at"])}


async def save(hub: Hub, env: str, account: Any, platforms: Any = None) -> dict[str, Any]:
    """Validate and store ``env``'s configuration (replacing any); returns :func:`view` of it."""
    checked = await validate(hub, account, platforms)
    stamp = now()
    values = {"environment_id": env, "project_id": checked.project_id,
              "client_email": checked.client_email, "private_key_id": checked.private_key_id,
              "private_key": _sealer(hub).seal(checked.private_key, env), "token_uri": checked.token_uri,
              "platforms": list(checked.platforms), "created_at": stamp, "updated_at": stamp}
    async with hub.db.begin() as conn:
        statement = upsert_statement(conn, config_table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[C.environment_id],
            set_={k: statement.excluded[k] for k in values if k not in ("environment_id", "created_at")})
        await conn.execute(statement)
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().one()
    return view(row)


async def get_view(hub: Hub, env: str) -> dict[str, Any] | None:
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().first()
    return view(row) if row is not None else None


async def remove(hub: Hub, env: str) -> bool:
    """Delete ``env``'s configuration; False when there was none."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(config_table).where(C.environment_id == env))
    return bool(result.rowcount)


async def load(hub: Hub, env: str) -> FcmConfig | None:
    """``env``'s configuration with the key unsealed, or None when it has none.

    Raises ``ValueError`` when the key cannot be unsealed (``HUB_SECRET_KEY`` changed).
    """
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().first()
    if row is None:
        return None
    return FcmConfig(env, row["project_id"], row["client_email"], row["private_key_id"],
                     _sealer(hub).unseal(row["private_key"], env), row["token_uri"], tuple(row["platforms"]))
