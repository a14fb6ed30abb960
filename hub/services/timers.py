"""Timers: rows with a due time (the source of truth), fired by deferred jobs (the fast path)
and by a sweeper cron (the safety net). Firing is idempotent: a timer fires once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from hub import queue
from hub.core import lifecycle
from hub.core.clock import now
from hub.db import tables
from hub.services import cards as card_service
from hub.services import engine
from hub.services.outbox import transaction

if TYPE_CHECKING:
    from hub.app import Hub

TM = tables.timer.c
CARD_ACTIONS = {"card_publish": "publish", "card_unsnooze": "unsnooze", "card_expire": "expire"}


async def fire_timer(ctx: dict[str, Any], timer_id: int) -> bool:
    """Job: fire one timer if it is due and has not fired."""
    hub: Hub = ctx["hub"]
    async with transaction(hub) as tx:
        row = (await tx.conn.execute(select(tables.timer).where(TM.id == timer_id))).mappings().first()
        if row is None or row["fired_at"] is not None:
            return False
        if row["due_at"] > now():  # a clock skew or an early run: the sweeper comes back
            return False
        claimed = await tx.conn.execute(update(tables.timer).where(
            TM.id == timer_id, TM.fired_at.is_(None)).values(fired_at=now()))
        if not claimed.rowcount:
            return False
        env = row["environment_id"]
        if row["kind"] in CARD_ACTIONS:
            try:
                card = await card_service.load_card(tx.conn, env, row["ref_id"])
            except card_service.CardNotFound:
                return True
            # The card may have moved on since the timer was set (snoozed again until later,
            # completed, cancelled): act only if this timer's action is what is due now.
            due = lifecycle.due_action(card["status"], now=now(), embargo_until=card["embargo_until"],
                                       snoozed_until=card["snoozed_until"], expires_at=card["expires_at"])
            if due == CARD_ACTIONS[row["kind"]]:
                await card_service.transition(hub, tx, env, row["ref_id"], due)
            return True
        if row["kind"] == "flow_resume":
            payload = row["payload"]
            await engine.resume_in(hub, tx, env, row["ref_id"], payload["step"], payload["visit"],
                                   {"reason": payload["reason"]})
        return True


async def sweep_timers(ctx: dict[str, Any], batch: int = 1000) -> int:
    """Cron job: enqueue every due timer that has not fired (a lost deferred job, a restart)."""
    hub: Hub = ctx["hub"]
    async with hub.db.connect() as conn:
        due = [i for (i,) in await conn.execute(select(TM.id).where(
            TM.fired_at.is_(None), TM.due_at <= now()).order_by(TM.due_at).limit(batch))]
    bucket = int(now().timestamp()) // 60  # a new job id each minute: arq keeps results an hour
    for timer_id in due:
        await queue.enqueue(hub.redis, "fire_timer", [timer_id], f"sweep:timer:{timer_id}:{bucket}")
    return len(due)


def sweep_schedule(settings: Any) -> dict[str, Any]:
    return {"second": set(range(0, 60, 10)), "run_at_startup": True}
