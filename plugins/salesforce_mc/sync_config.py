"""An environment's Salesforce profile sync settings: how to log in (the password and security
token sealed), which object and fields to pull into which customer fields, and how often.

:func:`save` checks each field and raises :class:`~hub_plugins.salesforce_mc.config.ConfigError`
naming it; :func:`view` is what the API and CLI show (never the password or token, but the state
of the latest run); :func:`credentials` unseals the secrets for a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update

from hub.core import customers as core
from hub.core.clock import now
from hub.db import insert_ignore, lock_for_write
from hub.net import UnsafeURL, check_url
from hub.sealing import Sealer
from hub.services.customers import field_types
from hub_plugins.salesforce_mc.config import ConfigError
from hub_plugins.salesforce_mc.tables import profile_sync as sync_table

if TYPE_CHECKING:
    from hub.app import Hub

S = sync_table.c
SEALER_PURPOSE = b"hub sfmc salesforce v1"
OBJECTS = ("Contact", "Lead")
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_USER_ID_FIELD = "Id"
DEFAULT_INTERVAL_MINUTES = 15
MIN_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES = 1, 1440
MAX_FIELDS = 100
MAX_TEXT = 255
# An API name (custom ones end in __c) or a relationship path such as Account.Name. Only such
# names are written into SOQL, so nothing a user types can change the query's shape.
SF_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79}){0,4}")
# Changing these points the sync at other records or other fields: the next run starts over.
RESTART_ON = ("login_url", "username", "sobject", "user_id_field", "field_map")


@dataclass(frozen=True)
class Credentials:
    """A Salesforce login, the secrets unsealed (never logged, never returned)."""

    login_url: str
    username: str
    password: str
    security_token: str

    def __repr__(self) -> str:  # the secrets stay out of tracebacks and debug output
        return f"Credentials(login_url={self.login_url!r}, username={self.username!r})"


def _sealer(hub: Hub) -> Sealer:
    return Sealer(hub.secret_key, purpose=SEALER_PURPOSE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _plain_text(value: Any, field: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (not value and not empty) or any(
            ch.isspace() or ord(ch) < 32 for ch in value):
        least = 0 if empty else 1
        raise ConfigError(field, f"must be {least}-{MAX_TEXT} characters without spaces")
    return value


def check_login_url(value: Any) -> str:
    """``value`` without a trailing slash, or :class:`ConfigError`: an https URL with no path."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if (parts is None or parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username or len(value) > MAX_TEXT):
        raise ConfigError("loginUrl", "must be an https URL without a path: https://login.salesforce.com, "
                                      "https://test.salesforce.com (sandboxes) or your My Domain URL")
    return str(value).rstrip("/")


def check_sf_field(value: Any, field: str) -> str:
    if not isinstance(value, str) or not SF_FIELD.fullmatch(value):
        raise ConfigError(field, "must be a Salesforce field API name (Email, Loyalty_Id__c) or a "
                                 "relationship path (Account.Name)")
    return value


def check_field_map(value: Any, definitions: dict[str, str]) -> dict[str, str]:
    """Salesforce field -> Hub customer field; each Hub field built in or defined, used once."""
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_FIELDS:
        raise ConfigError("fields", f"must map 1-{MAX_FIELDS} Salesforce fields to customer fields")
    seen_sf: set[str] = set()
    used: dict[str, str] = {}
    for sf_field, hub_field in value.items():
        path = f"fields.{sf_field}"
        check_sf_field(sf_field, path)
        if sf_field.lower() in seen_sf:
            raise ConfigError(path, "is mapped twice (Salesforce field names ignore case)")
        seen_sf.add(sf_field.lower())
        if not isinstance(hub_field, str) or not (hub_field in core.BUILTIN_FIELDS
                                                  or hub_field in definitions):
            raise ConfigError(path, f"{hub_field!r} is not a customer field: a built-in one "
                                    f"({', '.join(core.BUILTIN_FIELDS)}) or one defined with "
                                    "POST /v1/{env}/fields")
        if hub_field in used:
            raise ConfigError(path, f"customer field {hub_field!r} is already filled from {used[hub_field]}")
        used[hub_field] = sf_field
    return dict(value)


def check(changes: dict[str, Any], definitions: dict[str, str], *, creating: bool) -> dict[str, Any]:
    """The column values of ``changes`` (API field names), or :class:`ConfigError`."""
    values: dict[str, Any] = {}
    defaults = {"loginUrl": DEFAULT_LOGIN_URL, "securityToken": "", "object": "Contact",
                "userIdField": DEFAULT_USER_ID_FIELD, "enabled": True,
                "intervalMinutes": DEFAULT_INTERVAL_MINUTES}
    given = {**defaults, **changes} if creating else changes
    for required in ("username", "password", "fields"):
        if creating and given.get(required) is None:
            raise ConfigError(required, "required when the profile sync is first set")
    if "loginUrl" in given:
        values["login_url"] = check_login_url(given["loginUrl"])
    if "username" in given:
        values["username"] = _plain_text(given["username"], "username")
    if "password" in given:
        password = given["password"]
        if not isinstance(password, str) or not 1 <= len(password) <= MAX_TEXT:
            raise ConfigError("password", f"must be 1-{MAX_TEXT} characters")
        values["password"] = password
    if "securityToken" in given:
        values["security_token"] = _plain_text(given["securityToken"], "securityToken", empty=True)
    if "object" in given:
        if given["object"] not in OBJECTS:
            raise ConfigError("object", f"must be one of {', '.join(OBJECTS)}")
        values["sobject"] = given["object"]
    if "userIdField" in given:
        values["user_id_field"] = check_sf_field(given["userIdField"], "userIdField")
    if "fields" in given:
        values["field_map"] = check_field_map(given["fields"], definitions)
    if "enabled" in given:
        if not isinstance(given["enabled"], bool):
            raise ConfigError("enabled", "must be true or false")
        values["enabled"] = given["enabled"]
    if "intervalMinutes" in given:
        minutes = given["intervalMinutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
                MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES):
            raise ConfigError("intervalMinutes", f"must be a whole number from {MIN_INTERVAL_MINUTES} "
                                                 f"to {MAX_INTERVAL_MINUTES:,}")
        values["interval_minutes"] = minutes
    return values


def state(row: Any, at: datetime) -> str:
    """``running``, ``queued`` (asked for, not started yet), ``failed`` (the latest run), ``ok``, ``disabled``
    or ``new`` (never run)."""
    if row["lease_owner"] is not None and row["lease_until"] is not None and row["lease_until"] > at:
        return "running"
    requested = row["run_requested_at"]
    if requested is not None and (row["run_started_at"] is None or requested > row["run_started_at"]):
        return "queued"
    if row["last_error_at"] is not None and (row["last_success_at"] is None
                                             or row["last_error_at"] >= row["last_success_at"]):
        return "failed"
    if not row["enabled"]:
        return "disabled"
    return "ok" if row["last_success_at"] is not None else "new"


def view(row: Any) -> dict[str, Any]:
    """What the API and CLI show: the settings (never the password or token) and the run state."""
    error = None
    if row["last_error_at"] is not None:
        error = {"code": row["last_error_code"], "message": row["last_error"],
                 "at": _iso(row["last_error_at"])}
    watermark = None
    if row["watermark_at"] is not None:
        watermark = {"lastModifiedDate": row["watermark_at"], "id": row["watermark_id"]}
    return {
        "environmentId": row["environment_id"], "loginUrl": row["login_url"], "username": row["username"],
        "passwordSet": True, "securityTokenSet": row["security_token_set"], "object": row["sobject"],
        "userIdField": row["user_id_field"], "fields": row["field_map"], "enabled": row["enabled"],
        "intervalMinutes": row["interval_minutes"],
        "status": {
            "state": state(row, now()), "nextRunAt": _iso(row["next_run_at"]) if row["enabled"] else None,
            "lastRunStartedAt": _iso(row["run_started_at"]),
            "lastRunFinishedAt": _iso(row["run_finished_at"]),
            "lastRunRecords": row["run_records"], "lastRunSkipped": row["run_skipped"],
            "lastSkip": row["last_skip"], "lastSuccessAt": _iso(row["last_success_at"]),
            "lastError": error, "watermark": watermark, "totalRecords": row["total_records"],
        },
        "createdAt": _iso(row["created_at"]), "updatedAt": _iso(row["updated_at"]),
    }


_TOKEN_SET = (S.security_token != "").label("security_token_set")


async def _row(conn: Any, env: str, *, for_update: bool = False) -> Any:
    query = select(sync_table, _TOKEN_SET).where(S.environment_id == env)
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().first()


def _next_run(existing: Any, values: dict[str, Any], stamp: datetime, restarted: bool) -> datetime | None:
    enabled = values.get("enabled", existing["enabled"] if existing is not None else True)
    if not enabled:
        return None
    was_due = existing["next_run_at"] if existing is not None and existing["enabled"] else None
    if was_due is None or restarted:
        return stamp
    if "interval_minutes" in values and existing["run_finished_at"] is not None:
        return max(stamp, existing["run_finished_at"] + timedelta(minutes=values["interval_minutes"]))
    return was_due  # type: ignore[no-any-return]


async def save(hub: Hub, env: str, changes: dict[str, Any]) -> Any:
    """Create or update ``env``'s profile sync (fields not given keep their value); returns the row.

    A change of login, object, user id field or fields starts the next run over from the oldest
    record (and stops a run in flight after its current page).
    """
    if "loginUrl" in changes:
        url = check_login_url(changes["loginUrl"])
        try:
            await check_url(url, allow_private=hub.settings.allow_private_urls)
        except UnsafeURL as exc:
            raise ConfigError("loginUrl", str(exc)) from None
    stamp = now()
    seal = _sealer(hub)
    async with hub.db.begin() as conn:
        await lock_for_write(conn)
        existing = await _row(conn, env, for_update=True)
        values = check(changes, await field_types(conn, env), creating=existing is None)
        for secret in ("password", "security_token"):
            if values.get(secret):  # an empty token (trusted IP ranges) is stored empty
                values[secret] = seal.seal(values[secret], env)
        restarted = existing is None or any(
            name in values and values[name] != existing[name] for name in RESTART_ON)
        values["next_run_at"] = _next_run(existing, values, stamp, restarted)
        if existing is None:
            await insert_ignore(conn, sync_table, {
                "environment_id": env, "settings_version": 1, "run_records": 0, "run_skipped": 0,
                "total_records": 0, "created_at": stamp, "updated_at": stamp, **values}, ["environment_id"])
        else:
            if restarted:
                values.update(watermark_at=None, watermark_id=None,
                              settings_version=existing["settings_version"] + 1)
            await conn.execute(update(sync_table).where(S.environment_id == env).values(
                updated_at=stamp, **values))
        return await _row(conn, env)


async def get(hub: Hub, env: str) -> Any:
    async with hub.db.connect() as conn:
        return await _row(conn, env)


async def restart(conn: Any, env: str) -> bool:
    """Forget ``env``'s watermark, so the next run starts from the oldest record (a run in flight
    stops after its current page); False when there is no sync."""
    result = await conn.execute(update(sync_table).where(S.environment_id == env).values(
        watermark_at=None, watermark_id=None, settings_version=S.settings_version + 1, updated_at=now()))
    return bool(result.rowcount)


async def remove(hub: Hub, env: str) -> bool:
    """Delete ``env``'s profile sync (a run in flight stops after its page); False when none."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(sync_table).where(S.environment_id == env))
    return bool(result.rowcount)


def credentials(hub: Hub, row: Any) -> Credentials:
    """The row's login with its secrets unsealed; ``ValueError`` when ``HUB_SECRET_KEY`` changed."""
    seal, env = _sealer(hub), row["environment_id"]
    token = row["security_token"]
    return Credentials(row["login_url"], row["username"], seal.unseal(row["password"], env),
                       seal.unseal(token, env) if token else "")
