"""Apply Alembic migrations from code (``hub migrate``, ``hub dev``, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def version_locations() -> list[Path]:
    """The core's revisions, then each built-in plugin's branch (``plugins/<name>/migrations``)."""
    import hub_plugins

    plugin_dirs = sorted(path for root in hub_plugins.__path__ for path in Path(root).glob("*/migrations")
                         if path.is_dir())
    return [MIGRATIONS / "versions", *plugin_dirs]


def alembic_config(database_url: str = "") -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations()))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    return config


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the database to ``revision`` (default: the newest of the core and every plugin branch)."""
    config = alembic_config()

    def run(sync_connection: object) -> None:
        config.attributes["connection"] = sync_connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def current(engine: AsyncEngine) -> str | None:
    """The revisions the database is at, comma-separated (one per branch), or ``None``."""
    from alembic.runtime.migration import MigrationContext

    def read(sync_connection: object) -> str | None:
        heads = MigrationContext.configure(sync_connection).get_current_heads()  # type: ignore[arg-type]
        return ",".join(sorted(heads)) or None

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def pending(engine: AsyncEngine) -> list[str]:
    """Heads of the core or of a plugin branch that the database has not reached ([] when current).

    A plugin branch depends on a core revision, so the database records only the branch tips:
    a head counts as reached when it is one of them or below one of them.
    """
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    at = tuple((await current(engine) or "").split(",")) if await current(engine) else ()
    reached = {rev.revision for rev in script.revision_map.iterate_revisions(at, "base")} if at else set()
    return sorted(set(script.get_heads()) - reached)
