"""Alembic environment: runs migrations on Hub's async engine (``hub migrate``)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from hub.db import make_engine
from hub.db.tables import metadata

config = context.config


def _url() -> str:
    from hub.settings import load_settings

    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Autogenerate writes our portable column types by their module path.
    if type_ == "type" and type(obj).__module__ == "hub.db.types":
        return f"hub.db.types.{type(obj).__name__}()"
    return False


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      render_item=_render_item, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = make_engine(_url())
    async with engine.begin() as conn:
        await conn.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    # Called from hub.db.migrate.upgrade inside a running event loop, on its connection.
    do_run_migrations(config.attributes["connection"])
else:
    asyncio.run(run_async())
