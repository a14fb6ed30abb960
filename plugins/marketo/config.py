"""An environment's Marketo integration: its API key (sealed), lead-to-user mapping, write-back
fields and the flows it offers.

:func:`save` checks the settings and raises :class:`ConfigError` naming the field; the API key
Marketo sends in ``x-api-key`` is generated when none is given (shown once, by the caller) and
kept sealed. :func:`view` is what the API and the CLI show: never the key. :func:`key_matches`
is the check of every service call (one indexed read, a constant-time comparison).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select

from hub.core.clock import now
from hub.sealing import Sealer
from hub.services.cards import iso
from hub.services.flows import check_flow_id
from hub_plugins.marketo.tables import config as config_table

if TYPE_CHECKING:
    from hub.app import Hub

C = config_table.c
SEALER_PURPOSE = b"hub marketo v1"
USER_ID_FROM = ("leadId", "email")
# Lead fields Hub may write back in a callback: name -> (Marketo data type, description).
WRITE_BACK_FIELDS: dict[str, tuple[str, str]] = {
    "hubInvocationId": ("string", "The Hub flow invocation the step started for the lead"),
    "hubUserId": ("string", "The Hub user id the lead was sent to"),
    "hubFlowConfigId": ("string", "The Hub flow the step started"),
    "hubLastStatus": ("string", "started, or the error code of the last Hub flow step"),
    "hubStartedAt": ("datetime", "When Hub started the flow for the lead"),
}
API_KEY = re.compile(r"[\x21-\x7e]{20,200}")
MAX_FLOWS = 1000
_BY_ENV = select(config_table).where(C.environment_id == bindparam("env"))


class ConfigError(ValueError):
    """Settings that cannot be saved; ``field`` is its path in the request body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class MarketoConfig:
    """What the service routes and workers need (the API key stays sealed in the row)."""

    environment_id: str
    user_id_from: str
    write_back: tuple[str, ...]
    flows: tuple[str, ...] | None

    def offers(self, flow_id: str) -> bool:
        """Whether the settings let Marketo start ``flow_id`` (no list: every flow)."""
        return self.flows is None or flow_id in self.flows


def _sealer(hub: Hub) -> Sealer:
    return Sealer(hub.secret_key, purpose=SEALER_PURPOSE)


def new_api_key() -> str:
    """256 random bits, prefixed so a leaked key is recognisable."""
    return "hmk_" + secrets.token_urlsafe(32)


def check(api_key: Any, user_id_from: Any, write_back: Any, flows: Any) -> None:
    """Raise :class:`ConfigError` for the first field that cannot be saved."""
    if api_key is not None and (not isinstance(api_key, str) or not API_KEY.fullmatch(api_key)):
        raise ConfigError("apiKey", "must be 20-200 printable ASCII characters without spaces")
    if user_id_from not in USER_ID_FROM:
        raise ConfigError("userIdFrom", f"must be one of {', '.join(USER_ID_FROM)}")
    if not isinstance(write_back, list):
        raise ConfigError("writeBack", "must be a list of lead field names")
    for i, name in enumerate(write_back):
        if name not in WRITE_BACK_FIELDS:
            raise ConfigError(f"writeBack[{i}]", f"must be one of {', '.join(WRITE_BACK_FIELDS)}")
    if flows is not None:
        if not isinstance(flows, list) or len(flows) > MAX_FLOWS:
            raise ConfigError(
                "flows", f"must be null (every flow) or a list of at most {MAX_FLOWS} flowConfigIds"
            )
        for i, flow_id in enumerate(flows):
            issues = check_flow_id(flow_id, f"flows[{i}]")
            if issues:
                raise ConfigError(issues[0].field, issues[0].reason)


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the API and CLI show of the settings: never the API key."""
    return {
        "environmentId": row["environment_id"],
        "userIdFrom": row["user_id_from"],
        "writeBack": list(row["write_back"]),
        "flows": list(row["flows"]) if row["flows"] is not None else None,
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "apiKeyUpdatedAt": iso(row["api_key_updated_at"]),
    }


async def save(
    hub: Hub,
    env: str,
    *,
    api_key: str | None = None,
    rotate_api_key: bool = False,
    user_id_from: Any = "leadId",
    write_back: Any = None,
    flows: Any = None,
) -> tuple[dict[str, Any], str | None, bool]:
    """Store ``env``'s settings (replacing all but the API key, kept unless given or rotated).

    Returns the :func:`view`, the API key when Hub made one (the caller shows it this once),
    and whether the settings were created.
    """
    write_back = [] if write_back is None else write_back
    check(api_key, user_id_from, write_back, flows)
    if api_key is not None and rotate_api_key:
        raise ConfigError("rotateApiKey", "give apiKey or rotateApiKey, not both")
    stamp = now()
    async with hub.db.begin() as conn:
        query = select(config_table).where(C.environment_id == env)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        existing = (await conn.execute(query)).mappings().first()
        created = existing is None
        generated = new_api_key() if (created and api_key is None) or rotate_api_key else None
        key = api_key or generated
        values: dict[str, Any] = {
            "environment_id": env,
            "user_id_from": user_id_from,
            "write_back": list(dict.fromkeys(write_back)),
            "flows": list(dict.fromkeys(flows)) if flows is not None else None,
            "updated_at": stamp,
        }
        if key is not None:
            values.update(api_key=_sealer(hub).seal(key, env), api_key_updated_at=stamp)
        if created:
            values["created_at"] = stamp
            await conn.execute(config_table.insert().values(values))
        else:
            await conn.execute(config_table.update().where(C.environment_id == env).values(values))
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().one()
    return view(row), generated, created


async def get_view(hub: Hub, env: str) -> dict[str, Any] | None:
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().first()
    return view(row) if row is not None else None


async def remove(hub: Hub, env: str) -> bool:
    """Delete ``env``'s settings (Marketo's calls are refused from now on); False when none."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(config_table).where(C.environment_id == env))
    return bool(result.rowcount)


def _config(row: Mapping[str, Any]) -> MarketoConfig:
    return MarketoConfig(
        row["environment_id"],
        row["user_id_from"],
        tuple(row["write_back"]),
        tuple(row["flows"]) if row["flows"] is not None else None,
    )


async def load(hub: Hub, env: str) -> MarketoConfig | None:
    """``env``'s settings, or None when Marketo is not set up there."""
    rows = await hub.db.read(_BY_ENV, {"env": env})
    return _config(rows[0]) if rows else None


async def key_matches(hub: Hub, env: str, given: str) -> MarketoConfig | None:
    """``env``'s settings when ``given`` is its API key, else None (also when none is set up)."""
    rows = await hub.db.read(_BY_ENV, {"env": env})
    if not rows or not given:
        return None
    try:
        stored = _sealer(hub).unseal(rows[0]["api_key"], env)
    except ValueError:  # sealed under another HUB_SECRET_KEY: the key must be set again
        return None
    return _config(rows[0]) if hmac.compare_digest(stored.encode(), given.encode()) else None
