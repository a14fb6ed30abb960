"""An environment's activity settings: the JWT signing secret (sealed), the execute call's
timeout, retries and concurrency, where the user id comes from, and the URL token.

:func:`save` checks each field and raises :class:`ConfigError` naming it; :func:`view` is what
the API and CLI show (never the secret); :func:`by_token` gives the activity endpoints an
:class:`ActivityConfig` with the secret unsealed, cached briefly per process.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update

from hub.core.clock import now
from hub.db import upsert_statement
from hub.sealing import Sealer
from hub_plugins.salesforce_mc.tables import config as config_table

if TYPE_CHECKING:
    from hub.app import Hub

C = config_table.c
SEALER_PURPOSE = b"hub sfmc jwt v1"
SETTINGS = "sfmc"
# (field, column, lowest, highest, default): the ranges Journey Builder accepts (PROTOCOLS.md §6).
NUMBERS = (("timeoutMs", "timeout_ms", 1_000, 100_000, 20_000),
           ("retryCount", "retry_count", 0, 5, 0),
           ("retryDelayMs", "retry_delay_ms", 0, 60_000, 1_000),
           ("concurrentRequests", "concurrent_requests", 1, 50, 10))
DEFAULT_USER_ID_FROM = "keyValue"
ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 1024
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")


class ConfigError(ValueError):
    """Settings that cannot be saved; ``field`` is its path in the request body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ActivityConfig:
    """What the activity endpoints need, the secret unsealed (never logged, never returned)."""

    environment_id: str
    token: str
    secret: bytes
    timeout_ms: int
    retry_count: int
    retry_delay_ms: int
    concurrent_requests: int
    user_id_from: str

    def __repr__(self) -> str:  # the secret stays out of tracebacks and debug output
        return f"ActivityConfig(environment_id={self.environment_id!r})"


def _sealer(hub: Hub) -> Sealer:
    return Sealer(hub.secret_key, purpose=SEALER_PURPOSE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check(changes: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The column values of ``changes`` (API field names), or :class:`ConfigError`."""
    values: dict[str, Any] = {}
    secret = changes.get("jwtSigningSecret")
    if secret is None:
        if creating:
            raise ConfigError("jwtSigningSecret", "required when the integration is first set: copy it "
                                                  "from the installed package's details")
    elif not isinstance(secret, str) or not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise ConfigError("jwtSigningSecret", f"must be a string of {MIN_SECRET_LENGTH}-{MAX_SECRET_LENGTH} "
                                              "characters (the package's JWT signing secret)")
    else:
        values["jwt_secret"] = secret
    for field, column, low, high, default in NUMBERS:
        value = changes.get(field)
        if value is None:
            if creating:
                values[column] = default
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(field, f"must be a whole number from {low:,} to {high:,}")
        values[column] = value
    source = changes.get("userIdFrom")
    if source is None:
        if creating:
            values["user_id_from"] = DEFAULT_USER_ID_FROM
    elif not isinstance(source, str) or not ARGUMENT_NAME.fullmatch(source):
        raise ConfigError("userIdFrom", "must be keyValue (the contact key) or the name of an inArgument")
    else:
        values["user_id_from"] = source
    return values


def view(row: Any, base_url: str) -> dict[str, Any]:
    """What the API and CLI show: the URLs to install, the settings, never the secret."""
    base = f"{base_url.rstrip('/')}/sfmc/{row['token']}"
    return {"environmentId": row["environment_id"], "activityUrl": base, "decisionUrl": f"{base}/split",
            "timeoutMs": row["timeout_ms"], "retryCount": row["retry_count"],
            "retryDelayMs": row["retry_delay_ms"], "concurrentRequests": row["concurrent_requests"],
            "userIdFrom": row["user_id_from"], "jwtSigningSecretSet": True,
            "createdAt": _iso(row["created_at"]), "updatedAt": _iso(row["updated_at"]),
            "tokenRotatedAt": _iso(row["token_rotated_at"])}


async def _row(conn: Any, env: str) -> Any:
    return (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().first()


async def save(hub: Hub, env: str, changes: dict[str, Any]) -> Any:
    """Create or update ``env``'s settings (fields not given keep their value); returns the row."""
    stamp = now()
    async with hub.db.begin() as conn:
        existing = await _row(conn, env)
        values = check(changes, creating=existing is None)
        if "jwt_secret" in values:
            values["jwt_secret"] = _sealer(hub).seal(values["jwt_secret"], env)
        if existing is None:
            statement = upsert_statement(conn, config_table).values(
                environment_id=env, token=new_token(), created_at=stamp, updated_at=stamp, **values)
            await conn.execute(statement.on_conflict_do_nothing())
        else:
            await conn.execute(update(config_table).where(C.environment_id == env).values(
                updated_at=stamp, **values))
        row = await _row(conn, env)
    forget(hub)
    return row


async def get(hub: Hub, env: str) -> Any:
    async with hub.db.connect() as conn:
        return await _row(conn, env)


async def rotate(hub: Hub, env: str) -> Any:
    """A new URL token: the old activity URL answers 404 from now on. None when not configured."""
    stamp = now()
    async with hub.db.begin() as conn:
        result = await conn.execute(update(config_table).where(C.environment_id == env).values(
            token=new_token(), token_rotated_at=stamp, updated_at=stamp))
        row = await _row(conn, env) if result.rowcount else None
    forget(hub)
    return row


async def remove(hub: Hub, env: str) -> bool:
    """Delete ``env``'s settings (its activity URL answers 404); False when there were none."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(config_table).where(C.environment_id == env))
    forget(hub)
    return bool(result.rowcount)


_BY_TOKEN = select(config_table).where(C.token == bindparam("token"))


def _cache(hub: Hub) -> dict[str, tuple[float, ActivityConfig | None]]:
    cache: dict[str, tuple[float, ActivityConfig | None]] | None = getattr(hub, "_sfmc_config_cache", None)
    if cache is None:
        cache = {}
        hub._sfmc_config_cache = cache  # type: ignore[attr-defined]
    return cache


def forget(hub: Hub) -> None:
    """Drop this process's cached settings (after a change made here; other processes wait for
    HUB_SFMC_CONFIG_CACHE_SECONDS)."""
    _cache(hub).clear()


async def by_token(hub: Hub, token: str) -> ActivityConfig | None:
    """The settings whose URL token is ``token``, or None. Raises ``ValueError`` when the secret
    cannot be unsealed (``HUB_SECRET_KEY`` changed)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    cache = _cache(hub)
    hit = cache.get(token)
    clock = time.monotonic()
    if hit is not None and hit[0] > clock:
        return hit[1]
    rows = await hub.db.read(_BY_TOKEN, {"token": token})
    found = None
    if rows:
        row = rows[0]
        env = row["environment_id"]
        found = ActivityConfig(env, token, _sealer(hub).unseal(row["jwt_secret"], env).encode(),
                               row["timeout_ms"], row["retry_count"], row["retry_delay_ms"],
                               row["concurrent_requests"], row["user_id_from"])
    if len(cache) > 10_000:
        cache.clear()
    cache[token] = (clock + hub.plugin_settings[SETTINGS].config_cache_seconds, found)
    return found
