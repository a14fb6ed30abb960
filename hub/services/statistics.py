"""Planner statistics on PostgreSQL, when the server does not keep them itself.

PostgreSQL plans from statistics that ``ANALYZE`` gathers; autovacuum normally runs it as
tables change. On a server whose autovacuum is off, Hub's tables would keep no statistics at
all (or those of when they were small) and the planner would guess: a lookup of 8 analytics
events by id, for instance, then also reads the index of every event of the environment
(10 ms at 180,000 events, growing with the table). A cron job in ``hub worker`` therefore
checks every ``HUB_DB_ANALYZE_SECONDS`` for Hub tables (``hub_*``) whose rows changed by more
than ``1,000 + 10%`` since they were last analysed, and analyses them (``HUB_DB_ANALYZE``:
``auto`` does so only when autovacuum is off, ``always`` whatever the server does, ``never``
not at all). ``ANALYZE`` reads a sample of each table (at most 30,000 rows at the default
statistics target) and blocks neither reads nor writes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from hub.hookspecs import hookimpl
from hub.logging import get_logger

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

BASE_ROWS = 1000
SCALE = 0.1

_AUTOVACUUM = text("SELECT current_setting('autovacuum')")
_STALE = text(r"""
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname LIKE 'hub\_%'
  AND s.n_mod_since_analyze > :base + :scale * greatest(c.reltuples, 0)
ORDER BY s.relname
""")


async def analyze_stale_tables(hub: Hub) -> list[str]:
    """ANALYZE the Hub tables whose statistics are stale; returns their names."""
    mode = hub.settings.db_analyze
    if hub.db.dialect != "postgresql" or mode == "never":
        return []
    async with hub.db.connect() as conn:
        if mode == "auto" and (await conn.execute(_AUTOVACUUM)).scalar() == "on":
            return []
        stale = [name for (name,) in await conn.execute(_STALE, {"base": BASE_ROWS, "scale": SCALE})]
        for name in stale:
            await conn.execute(text(f'ANALYZE "{name}"'))
        await conn.commit()
    if stale:
        log.info("tables_analyzed", tables=stale)
    return stale


async def analyze_tables(ctx: dict[str, Any]) -> int:
    """Cron job: :func:`analyze_stale_tables`."""
    return len(await analyze_stale_tables(ctx["hub"]))


def _schedule(settings: Any) -> dict[str, Any]:
    step = max(1, int(settings.db_analyze_seconds))
    if step < 60:
        return {"second": set(range(0, 60, step))}
    return {"minute": set(range(0, 60, max(1, step // 60))), "second": {0}}


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(analyze_tables, cron=_schedule, max_tries=1)
