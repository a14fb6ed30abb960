"""Environments (tenants) and their API clients."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update

from hub.api.auth import ROLES, hash_secret, new_client_credentials
from hub.core.clock import now
from hub.db import Database, tables

ENV_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SetupError(ValueError):
    """A request about environments or clients that cannot be done; the message says why."""


async def create_environment(db: Database, env_id: str, name: str | None = None) -> dict[str, Any]:
    if not ENV_ID.match(env_id):
        raise SetupError(
            f"environment id {env_id!r} must be 1-64 lowercase letters, digits, '-' or '_'"
        )
    async with db.begin() as conn:
        exists = (await conn.execute(
            select(tables.environment.c.id).where(tables.environment.c.id == env_id)
        )).first()
        if exists:
            raise SetupError(f"environment {env_id!r} already exists")
        row = {"id": env_id, "name": name or env_id, "created_at": now()}
        await conn.execute(tables.environment.insert().values(row))
        await conn.execute(tables.stream_container.insert().values(
            environment_id=env_id, id="default", name="Default", created_at=row["created_at"]))
    return row


async def get_environment(db: Database, env_id: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        row = (await conn.execute(
            select(tables.environment).where(tables.environment.c.id == env_id)
        )).mappings().first()
    return dict(row) if row else None


async def list_environments(db: Database) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(tables.environment).order_by(tables.environment.c.id)))
        return [dict(r) for r in rows.mappings()]


async def create_client(db: Database, env_id: str, roles: list[str], name: str = "") -> dict[str, Any]:
    """Create an API client; the returned secret is shown once and stored only hashed."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise SetupError(f"unknown roles {unknown}; choose from {sorted(ROLES)}")
    if await get_environment(db, env_id) is None:
        raise SetupError(f"environment {env_id!r} does not exist (hub env create {env_id})")
    client_id, secret = new_client_credentials()
    async with db.begin() as conn:
        await conn.execute(tables.api_client.insert().values(
            client_id=client_id, environment_id=env_id, name=name or client_id,
            secret_hash=hash_secret(secret), roles=list(roles), created_at=now(),
        ))
    return {"client_id": client_id, "client_secret": secret, "environment": env_id,
            "roles": list(roles)}


async def list_clients(db: Database, env_id: str) -> list[dict[str, Any]]:
    c = tables.api_client.c
    async with db.connect() as conn:
        rows = await conn.execute(
            select(c.client_id, c.name, c.roles, c.created_at, c.revoked_at)
            .where(c.environment_id == env_id).order_by(c.created_at)
        )
        return [dict(r) for r in rows.mappings()]


async def revoke_client(db: Database, client_id: str) -> bool:
    c = tables.api_client.c
    async with db.begin() as conn:
        result = await conn.execute(
            update(tables.api_client).where(c.client_id == client_id, c.revoked_at.is_(None))
            .values(revoked_at=now())
        )
    return bool(result.rowcount)
