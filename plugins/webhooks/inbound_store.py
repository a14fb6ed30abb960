"""Trigger endpoints in the database: create, list, get, update, rotate, delete, find by token.

The URL token (``secrets.token_urlsafe(32)``, 256 random bits) is shown once, when it is made,
and stored only as its SHA-256: a database dump gives nobody a working URL, and a lookup by hash
is one indexed read (:func:`find_by_token`, on the ``hub.db.read`` fast path).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Mapping as MappingABC
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update

from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.db import tables
from hub.services.cards import iso
from hub_plugins.webhooks import inbound_signing as signing
from hub_plugins.webhooks.inbound_tables import trigger as trigger_table
from hub_plugins.webhooks.mapping import parse_mapping

if TYPE_CHECKING:
    from hub.app import Hub

T = trigger_table.c
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_BY_TOKEN = select(trigger_table).where(T.token_hash == bindparam("token_hash"))


class TriggerNotFound(LookupError):
    pass


class InvalidTrigger(ValueError):
    def __init__(self, issues: list[FieldIssue]) -> None:
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


def new_trigger_id() -> str:
    """``trg_`` + milliseconds + randomness: ids sort by creation, for keyset pages."""
    return f"trg_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def trigger_json(row: MappingABC[str, Any]) -> dict[str, Any]:
    """A trigger as the API shows it: never its token nor its secret."""
    return {
        "id": row["id"], "flowConfigId": row["flow_id"], "name": row["name"], "signed": row["signed"],
        "mapping": row["mapping"], "createdAt": iso(row["created_at"]), "updatedAt": iso(row["updated_at"]),
        "tokenRotatedAt": iso(row["token_rotated_at"]), "secretRotatedAt": iso(row["secret_rotated_at"]),
        "previousSecretExpiresAt": iso(row["previous_secret_expires_at"]),
    }


def _check(flow_id: Any = None, name: Any = None, mapping: Any = None) -> dict[str, Any]:
    issues: list[FieldIssue] = []
    if flow_id is not None and (not isinstance(flow_id, str) or not 1 <= len(flow_id) <= 64):
        issues.append(FieldIssue("flowConfigId", "must be 1-64 characters"))
    if name is not None and (not isinstance(name, str) or len(name) > 200
                             or any(ord(ch) < 32 for ch in name)):
        issues.append(FieldIssue("name", "must be at most 200 characters without control characters"))
    parsed, more = parse_mapping(mapping)
    issues += more
    if issues:
        raise InvalidTrigger(issues)
    return parsed.raw if parsed is not None else {}


async def _flow_exists(conn: Any, env: str, flow_id: str) -> None:
    f = tables.flow.c
    found = (await conn.execute(select(f.id).where(f.environment_id == env, f.id == flow_id))).first()
    if found is None:
        raise InvalidTrigger([FieldIssue("flowConfigId", f"no flow {flow_id!r} in environment {env!r}")])


async def create_trigger(hub: Hub, env: str, *, flow_id: str, name: str, signed: bool,
                         mapping: Any) -> tuple[dict[str, Any], str, str]:
    """A new trigger; returns it with its token and secret (shown this once)."""
    clean = _check(flow_id, name, mapping)
    token, secret, stamp = new_token(), signing.new_secret(), now()
    trigger_id = new_trigger_id()
    row = {"id": trigger_id, "environment_id": env, "flow_id": flow_id, "name": name,
           "token_hash": token_hash(token), "signed": signed,
           "secret": signing.sealer(hub).seal(secret, trigger_id), "previous_secret": None,
           "previous_secret_expires_at": None, "mapping": clean or None, "created_at": stamp,
           "updated_at": stamp, "token_rotated_at": stamp, "secret_rotated_at": stamp}
    async with hub.db.begin() as conn:
        await _flow_exists(conn, env, flow_id)
        await conn.execute(trigger_table.insert().values(row))
    return trigger_json(row), token, secret


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"w1|{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        version, _, last = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
    except (ValueError, UnicodeDecodeError):
        version, last = "", ""
    if version != "w1" or not last:
        raise InvalidTrigger([FieldIssue("query.cursor", "not a cursor this API returned")])
    return last


async def list_triggers(hub: Hub, env: str, *, flow_id: str | None = None, cursor: str | None = None,
                        limit: int = 100) -> dict[str, Any]:
    query = select(trigger_table).where(T.environment_id == env)
    if flow_id is not None:
        query = query.where(T.flow_id == flow_id)
    if cursor:
        query = query.where(T.id > decode_cursor(cursor))
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(T.id).limit(limit + 1))).mappings().all()
    page = rows[:limit]
    return {"triggers": [trigger_json(r) for r in page],
            "nextCursor": encode_cursor(page[-1]["id"]) if len(rows) > limit else None}


async def _row(conn: Any, env: str, trigger_id: str, *, lock: bool = False) -> dict[str, Any]:
    query = select(trigger_table).where(T.environment_id == env, T.id == trigger_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise TriggerNotFound(trigger_id)
    return dict(row)


async def get_trigger(hub: Hub, env: str, trigger_id: str) -> dict[str, Any]:
    """The stored row (show it with :func:`trigger_json`); :class:`TriggerNotFound` if none."""
    async with hub.db.connect() as conn:
        return await _row(conn, env, trigger_id)


async def update_trigger(hub: Hub, env: str, trigger_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change ``flowConfigId``, ``name``, ``signed`` or ``mapping`` (``{}`` removes it)."""
    values: dict[str, Any] = {}
    if "mapping" in changes:
        values["mapping"] = _check(mapping=changes["mapping"]) or None
    if changes.get("name") is not None:
        _check(name=changes["name"])
        values["name"] = changes["name"]
    if changes.get("signed") is not None:
        values["signed"] = bool(changes["signed"])
    async with hub.db.begin() as conn:
        row = await _row(conn, env, trigger_id, lock=True)
        if changes.get("flowConfigId") is not None:
            _check(flow_id=changes["flowConfigId"])
            await _flow_exists(conn, env, changes["flowConfigId"])
            values["flow_id"] = changes["flowConfigId"]
        if values:
            values["updated_at"] = now()
            await conn.execute(update(trigger_table).where(
                T.environment_id == env, T.id == trigger_id).values(values))
            row.update(values)
    return trigger_json(row)


async def rotate(hub: Hub, env: str, trigger_id: str, *, token: bool, secret: bool,
                 grace_seconds: int = 0) -> tuple[dict[str, Any], str | None, str | None]:
    """A new token (the old URL stops at once) and/or a new secret (the old one keeps working
    for ``grace_seconds``, so senders can switch without a gap)."""
    if not token and not secret:
        raise InvalidTrigger([FieldIssue("body", "rotate at least one of token and secret")])
    new_token_value = new_token() if token else None
    new_secret_value = signing.new_secret() if secret else None
    stamp = now()
    async with hub.db.begin() as conn:
        row = await _row(conn, env, trigger_id, lock=True)
        values: dict[str, Any] = {"updated_at": stamp}
        if new_token_value:
            values.update(token_hash=token_hash(new_token_value), token_rotated_at=stamp)
        if new_secret_value:
            values.update(secret=signing.sealer(hub).seal(new_secret_value, trigger_id),
                          secret_rotated_at=stamp,
                          previous_secret=row["secret"] if grace_seconds > 0 else None,
                          previous_secret_expires_at=stamp + timedelta(seconds=grace_seconds)
                          if grace_seconds > 0 else None)
        await conn.execute(update(trigger_table).where(
            T.environment_id == env, T.id == trigger_id).values(values))
        row.update(values)
    return trigger_json(row), new_token_value, new_secret_value


async def delete_trigger(hub: Hub, env: str, trigger_id: str) -> None:
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(trigger_table).where(
            T.environment_id == env, T.id == trigger_id))
    if not result.rowcount:
        raise TriggerNotFound(trigger_id)


async def find_by_token(hub: Hub, token: str) -> dict[str, Any] | None:
    """The trigger a URL token opens, or ``None`` (one indexed read, no transaction)."""
    if not TOKEN.match(token):
        return None
    rows = await hub.db.read(_BY_TOKEN, {"token_hash": token_hash(token)})
    return rows[0] if rows else None


def signing_keys(hub: Hub, row: MappingABC[str, Any]) -> list[bytes]:
    """The keys a signature may use: the secret, and the previous one during its grace period."""
    seal = signing.sealer(hub)
    keys = [signing.secret_key(seal.unseal(row["secret"], row["id"]))]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] and expires is not None and expires > now():
        keys.append(signing.secret_key(seal.unseal(row["previous_secret"], row["id"])))
    return keys
