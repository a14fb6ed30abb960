from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hub.db import migrate as migrations
from hub.db.tables import metadata


async def test_migrated_database_matches_the_models(hub):
    def diff(sync_conn):
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with hub.db.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_database_is_at_the_head_of_the_core_and_of_every_plugin_branch(hub):
    script = ScriptDirectory.from_config(migrations.alembic_config())
    heads = script.get_heads()
    # One head per branch: the core's and at least one per built-in plugin with migrations.
    assert len(heads) >= len(migrations.version_locations())
    assert await migrations.pending(hub.db.engine) == []


async def test_upgrade_is_idempotent(hub):
    await migrations.upgrade(hub.db.engine)
    await migrations.upgrade(hub.db.engine)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(hub):
    if hub.db.dialect != "sqlite":
        return
    from sqlalchemy import text

    async with hub.db.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
