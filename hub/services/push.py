"""Push notifications: scheduled with the change that calls for them, sent by workers.

A notification is a row (``hub_push_notification``) written in the transaction of what asks for
it: a card that becomes active with a push template (``newCard``), a card that comes back from a
snooze (``unsnoozedCard``), or a flow's ``push`` step. Its id derives from that cause, so a re-run
writes nothing new. After commit, :func:`send_pushes` jobs deliver notifications in batches:

1. a card that is no longer active (completed, dismissed, cancelled, expired, snoozed) cancels
   its push;
2. the customer's preferences decide when: notifications off (or no window on any weekday)
   skips it, a time outside their notification windows moves it to the next window, in their own
   timezone (``rescheduledBasedOnEndUserPrefs``), durably: the row's ``due_at`` is the truth, a
   deferred job the fast path, :func:`sweep_pushes` the net;
3. every valid device of the customer on the targeted platforms (``hub_push_devices``) gets it
   through ``hub_send_push`` (the first plugin that takes the platform answers);
4. a device refused for good is marked invalid (``hub_push_device_invalid``); a device whose
   provider asks to try again is tried again later with exponential backoff and jitter, never
   sooner than its ``retryAfter``, at most ``HUB_PUSH_MAX_ATTEMPTS`` times;
5. the first device that accepts it records ``notification-sent`` (once, with a stable id).

Delivery is at least once: a worker killed between a provider's answer and the commit sends that
device again (providers collapse the duplicate: ``collapseKey`` is the card, APNs' ``apns-id``
derives from the notification and device).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update

from hub import queue
from hub.core import push as core
from hub.core.analytics import build_event
from hub.core.clock import now
from hub.db import bulk_insert, insert_ignore, tables
from hub.hookspecs import hookimpl
from hub.logging import get_logger
from hub.plugins import call_first, call_hook
from hub.services.analytics import record_events
from hub.services.outbox import PendingJob, Transaction, transaction

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

N = tables.push_notification.c
PUSH_NAMESPACE = uuid.UUID("0b7f6a1e-3c55-4e8a-9d2f-5a0c8e4b1d77")
SEND_JOB = "send_pushes"
FINAL_DELIVERIES = frozenset({"sent", "invalid_device", "failed", "unsupported"})
ALL_PLATFORMS = ("ios", "android", "web")


def notification_id(*parts: Any) -> str:
    """Ids derive from the cause (card and scenario, or instance, step and visit)."""
    return str(uuid.uuid5(PUSH_NAMESPACE, ":".join(str(p) for p in parts)))


def _ttl(hub: Hub, expires_at: datetime | None, stamp: datetime) -> int:
    if expires_at is not None:
        return max(0, int((expires_at - stamp).total_seconds()))
    return hub.settings.push_default_ttl_seconds


def notification_row(hub: Hub, *, nid: str, env: str, user_id: str, title: str, body: str,
                     data: dict[str, str], platforms: Sequence[str], priority: str, ttl: int,
                     stamp: datetime, card_id: str | None = None, scenario: str | None = None,
                     instance_id: str | None = None, step_id: str | None = None) -> dict[str, Any]:
    """A ``scheduled`` notification due at ``stamp`` (``failed`` at once if too large to send)."""
    error = core.payload_error(title, body, data)
    return {"id": nid, "environment_id": env, "user_id": user_id, "card_id": card_id,
            "instance_id": instance_id, "step_id": step_id, "scenario": scenario, "title": title,
            "body": body, "data": data, "platforms": list(platforms), "priority": priority,
            "ttl_seconds": ttl, "status": "failed" if error else "scheduled", "due_at": stamp,
            "rescheduled": False, "attempts": 0, "deliveries": {}, "detail": error,
            "created_at": stamp, "updated_at": stamp, "sent_at": None}


def _batches(hub: Hub, env: str, ids: Sequence[str], tag: str) -> list[PendingJob]:
    size = max(1, hub.settings.push_batch_size)
    return [PendingJob(SEND_JOB, [env, list(ids[i:i + size])], f"push:{env}:{ids[i]}:{tag}")
            for i in range(0, len(ids), size)]


# --- scheduling, in the transaction of the change ----------------------------------------------


async def schedule_card_pushes(hub: Hub, tx: Transaction, env: str, cards: Sequence[Mapping[str, Any]],
                               scenario: str, stamp: datetime,
                               invocations: Mapping[str, Mapping[str, Any]] | None = None,
                               cause: str | None = None) -> list[str]:
    """Schedule the push of each active card whose template has one; returns their ids.

    ``cause`` tells apart two pushes of one card in one scenario (each unsnooze is a new one).
    """
    rows = []
    for card in cards:
        push = (card.get("content") or {}).get("push")
        if not push or card["status"] != "active":
            continue
        payload = (invocations or {}).get(card.get("invocation_id") or "", {}).get("payload") or {}
        data = core.card_data(payload.get("notificationDetail"), card["id"], scenario,
                              card.get("instance_id"))
        # The card's own platforms, and the push platforms of plugins its template names.
        platforms = list(dict.fromkeys([*card["platforms"], *push.get("extraPlatforms", [])]))
        rows.append(notification_row(
            hub, nid=notification_id(card["id"], scenario, cause or ""), env=env, user_id=card["user_id"],
            title=push["title"], body=push["body"], data=data, platforms=platforms,
            priority=core.priority_for(card.get("priority")), ttl=_ttl(hub, card.get("expires_at"), stamp),
            stamp=stamp, card_id=card["id"], scenario=scenario, instance_id=card.get("instance_id"),
            step_id=card.get("step_id")))
    if not rows:
        return []
    await insert_ignore(tx.conn, tables.push_notification, rows, ["id"])
    for row in rows:
        if row["detail"]:
            log.warning("push_payload_too_large", environment=env, card=row["card_id"], detail=row["detail"])
    ids = [r["id"] for r in rows if r["status"] == "scheduled"]
    await tx.enqueue_many(_batches(hub, env, ids, "new"))
    return ids


async def cancel_card_pushes(tx: Transaction, env: str, card_id: str, status: str, stamp: datetime) -> None:
    """The card left ``active`` (to ``status``) before its push went: the push is cancelled."""
    await tx.conn.execute(update(tables.push_notification).where(
        N.card_id == card_id, N.environment_id == env, N.status == "scheduled", N.sent_at.is_(None),
    ).values(status="cancelled", detail=f"the card was {status} before its push was sent", updated_at=stamp))


# --- sending ---------------------------------------------------------------------------------


class _Batch:
    """What one run of :func:`deliver` decides and changes, written in one transaction."""

    def __init__(self, hub: Hub, env: str, stamp: datetime) -> None:
        self.hub, self.env, self.stamp = hub, env, stamp
        self.updates: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.jobs: list[PendingJob] = []
        self.handled: dict[str, dict[str, Any]] = {}
        self.invocations: dict[str, dict[str, Any]] = {}

    def finish(self, row: dict[str, Any], **changes: Any) -> None:
        row.update(changes, updated_at=self.stamp)
        self.updates.append(row)
        self.handled[row["id"]] = row


def summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A notification as the API and a push step's output show it."""
    deliveries = row["deliveries"] or {}
    return {"notificationId": row["id"], "status": row["status"], "scenario": row["scenario"],
            "cardInstanceId": row["card_id"], "userId": row["user_id"],
            "dueAt": core.iso(row["due_at"]), "rescheduledBasedOnEndUserPrefs": bool(row["rescheduled"]),
            "attempts": row["attempts"], "detail": row["detail"],
            "sent": sum(1 for d in deliveries.values() if d["status"] == "sent"),
            "deliveries": [{"deviceId": k, **v} for k, v in deliveries.items()],
            "sentAt": core.iso(row["sent_at"])}


async def deliver(hub: Hub, env: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Send the due notifications among ``ids``; returns the row of each one handled, as
    written (:func:`summary` shows one)."""
    stamp = now()
    async with hub.db.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(select(tables.push_notification).where(
            N.environment_id == env, N.id.in_(list(ids)), N.status == "scheduled"))).mappings()]
        rows = [r for r in rows if r["due_at"] <= stamp + timedelta(seconds=1)]
        if not rows:
            return {}
        k, c = tables.card.c, tables.customer.c
        card_ids = [r["card_id"] for r in rows if r["card_id"]]
        cards = {r["id"]: dict(r) for r in (await conn.execute(select(tables.card).where(
            k.environment_id == env, k.id.in_(card_ids)))).mappings()} if card_ids else {}
        i = tables.invocation.c
        invocation_ids = sorted({c["invocation_id"] for c in cards.values() if c["invocation_id"]})
        invocations = {r["id"]: dict(r) for r in (await conn.execute(select(i.id, i.payload).where(
            i.environment_id == env, i.id.in_(invocation_ids)))).mappings()} if invocation_ids else {}
        users = sorted({r["user_id"] for r in rows})
        prefs = dict((await conn.execute(select(c.user_id, c.preferences).where(
            c.environment_id == env, c.user_id.in_(users)))).all())
    batch = _Batch(hub, env, stamp)
    batch.invocations = invocations
    sending = []
    for row in rows:
        card = cards.get(row["card_id"]) if row["card_id"] else None
        if row["card_id"] and (card is None or card["status"] != "active"):
            state = card["status"] if card else "deleted"
            batch.finish(row, status="cancelled", detail=f"the card was {state} before its push was sent")
            continue
        when = core.next_window(prefs.get(row["user_id"]) or {}, stamp)
        if when is None:
            mine = {**core.DEFAULT_PREFERENCES, **(prefs.get(row["user_id"]) or {})}
            off = not mine["notificationsEnabled"]
            batch.finish(row, status="skipped", detail="the customer turned notifications off" if off
                         else "the customer accepts notifications on no weekday")
            continue
        if when > stamp + timedelta(seconds=1):
            batch.finish(row, due_at=when, rescheduled=True,
                         detail="moved to the customer's next notification window")
            batch.jobs.append(PendingJob(SEND_JOB, [env, [row["id"]]],
                                         f"push:{env}:{row['id']}:w{int(when.timestamp())}", when))
            continue
        sending.append(row)
    if sending:
        await _send(batch, sending, cards)
    await _write(batch)
    return batch.handled


async def _send(batch: _Batch, rows: list[dict[str, Any]], cards: Mapping[str, Mapping[str, Any]]) -> None:
    hub, env = batch.hub, batch.env
    platforms = sorted({p for r in rows for p in r["platforms"]})
    found = await call_hook(hub.pm, "hub_push_devices", hub=hub, environment_id=env,
                            user_ids=sorted({r["user_id"] for r in rows}), platforms=platforms)
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for devices in found:
        for device in devices:
            by_user[device["userId"]].append(device)
    semaphore = asyncio.Semaphore(max(1, hub.settings.push_concurrency))
    has_provider = bool(hub.pm.hook.hub_send_push.get_hookimpls())

    async def one(row: dict[str, Any], device: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        notification = {"notificationId": row["id"], "environmentId": env, "userId": row["user_id"],
                        "title": row["title"], "body": row["body"], "data": row["data"],
                        "cardInstanceId": row["card_id"], "scenario": row["scenario"],
                        "priority": row["priority"], "ttlSeconds": row["ttl_seconds"],
                        "collapseKey": row["card_id"] or row["id"]}
        async with semaphore:
            try:
                answer = await call_first(hub.pm, "hub_send_push", hub=hub, notification=notification,
                                          device=device)
            except Exception as exc:  # a provider plugin's bug: retried, and logged
                log.exception("push_provider_error", environment=env, device=device.get("deviceId"))
                answer = {"status": "retry", "provider": "?",
                          "detail": f"provider error: {type(exc).__name__}"}
        if answer is None:
            answer = {"status": "unsupported", "provider": "-",
                      "detail": f"no push provider sends to {device.get('platform')} devices in {env}"}
        return device, answer

    work: list[tuple[dict[str, Any], int]] = []
    futures = []
    for row in rows:
        done = row["deliveries"] = dict(row["deliveries"] or {})
        targets = [d for d in by_user.get(row["user_id"], []) if d.get("platform") in row["platforms"]
                   and done.get(str(d["deviceId"]), {}).get("status") not in FINAL_DELIVERIES]
        if not targets and not done:
            reason = ("no push provider is installed" if not has_provider else
                      f"the customer has no valid device on {', '.join(row['platforms'])}")
            batch.finish(row, status="skipped", detail=reason)
            continue
        work.append((row, len(targets)))
        futures += [one(row, d) for d in targets]
    answers = iter(await asyncio.gather(*futures))
    max_attempts = max(1, hub.settings.push_max_attempts)
    retry_at: dict[str, float] = {}
    at = core.iso(batch.stamp)
    for row, count in work:
        attempt = row["attempts"] + 1
        for _ in range(count):
            device, answer = next(answers)
            device_id = str(device["deviceId"])
            status = str(answer.get("status"))
            if status not in core.DELIVERY_STATUSES:
                status, answer = "failed", {**answer, "detail": f"provider answered status {status!r}"}
            previous = row["deliveries"].get(device_id, {})
            tries = int(previous.get("attempts", 0)) + 1
            if status == "retry" and tries >= max_attempts:
                status = "failed"
                answer = {**answer, "detail": f"{answer.get('detail')} (gave up after {tries} attempts)"}
            row["deliveries"][device_id] = {
                "platform": device.get("platform"), "provider": str(answer.get("provider") or "-"),
                "status": status, "detail": str(answer.get("detail") or "")[:500], "attempts": tries,
                "providerMessageId": answer.get("providerMessageId"), "at": at}
            batch.log.append({"environment_id": batch.env, "notification_id": row["id"],
                              "user_id": row["user_id"],
                              "device_id": device_id[:64], "platform": str(device.get("platform"))[:32],
                              "provider": str(answer.get("provider") or "-")[:64], "status": status,
                              "detail": str(answer.get("detail") or "")[:500], "attempt": attempt,
                              "at": batch.stamp})
            if status == "invalid_device":
                await call_hook(hub.pm, "hub_push_device_invalid", hub=hub, environment_id=env,
                                device=device, detail=str(answer.get("detail") or "invalid token"))
            elif status == "retry":
                wait = core.retry_delay(tries, answer.get("retryAfter"),
                                        base=hub.settings.push_retry_base_seconds,
                                        cap=hub.settings.push_retry_max_seconds)
                retry_at[row["id"]] = max(retry_at.get(row["id"], 0.0), wait)
    # The batch's retries go together, after the longest wait any of them needs: one job.
    due = batch.stamp + timedelta(seconds=max(retry_at.values())) if retry_at else None
    for row, _count in work:
        _settle(batch, row, row["attempts"] + 1, due if row["id"] in retry_at else None,
                cards.get(row["card_id"] or ""))
    retrying = [row["id"] for row, _count in work if row["id"] in retry_at]
    if retrying and due is not None:
        batch.jobs += [PendingJob(job.job_name, job.args, job.job_id, due)
                       for job in _batches(hub, env, retrying, f"r{int(due.timestamp())}")]


def _settle(batch: _Batch, row: dict[str, Any], attempt: int, retry_at: datetime | None,
            card: Mapping[str, Any] | None) -> None:
    statuses = [d["status"] for d in row["deliveries"].values()]
    first_sent = "sent" in statuses and row["sent_at"] is None
    changes: dict[str, Any] = {"attempts": attempt}
    if first_sent:
        changes["sent_at"] = batch.stamp
        invocation = batch.invocations.get(card["invocation_id"] or "") if card else None
        batch.events.append(_sent_event(row, card, invocation, batch.stamp))
    if retry_at is not None:
        changes.update(due_at=retry_at, detail="waiting to try again: " + "; ".join(
            d["detail"] for d in row["deliveries"].values() if d["status"] == "retry")[:500])
    elif "sent" in statuses:
        changes.update(status="sent", detail=None)
    else:
        reasons = sorted({d["detail"] for d in row["deliveries"].values()})
        changes.update(status="failed", detail="; ".join(reasons)[:500])
    batch.finish(row, **changes)


def _sent_event(row: Mapping[str, Any], card: Mapping[str, Any] | None,
                invocation: Mapping[str, Any] | None, stamp: datetime) -> dict[str, Any]:
    properties = {"notificationScenario": row["scenario"],
                  "rescheduledBasedOnEndUserPrefs": bool(row["rescheduled"]),
                  "notificationId": row["id"], "title": row["title"], "body": row["body"]}
    event_id = notification_id(row["id"], "notification-sent")
    if card is not None:
        from hub.services.cards import card_event

        return card_event(card, "notification-sent", stamp, properties=properties, invocation=invocation,
                          event_id=event_id)
    return build_event("notification-sent", user_id=row["user_id"], timestamp=stamp, properties=properties,
                       platform={"flowInstanceId": row["instance_id"]}, event_id=event_id)


async def _write(batch: _Batch) -> None:
    if not batch.updates and not batch.jobs:
        return
    hub, env = batch.hub, batch.env
    await _chain(hub, env, batch.events)
    async with transaction(hub) as tx:
        if batch.updates:
            await tx.conn.execute(
                update(tables.push_notification).where(
                    N.id == bindparam("b_id"), N.status == "scheduled").values(
                    status=bindparam("status"), due_at=bindparam("due_at"),
                    rescheduled=bindparam("rescheduled"), attempts=bindparam("attempts"),
                    deliveries=bindparam("deliveries"), detail=bindparam("detail"),
                    updated_at=bindparam("updated_at"), sent_at=bindparam("sent_at"),
                ).execution_options(synchronize_session=False),
                [{"b_id": r["id"], **{k: r[k] for k in ("status", "due_at", "rescheduled", "attempts",
                                                         "deliveries", "detail", "updated_at", "sent_at")}}
                 for r in batch.updates])
        if batch.log:
            await bulk_insert(tx.conn, tables.push_delivery, batch.log)
        if batch.events:
            await record_events(tx, env, batch.events,
                                announce=bool(hub.pm.hook.hub_analytics_event.get_hookimpls()))
        await tx.enqueue_many(batch.jobs)


async def _chain(hub: Hub, env: str, events: list[dict[str, Any]]) -> None:
    """Fill in the id chain of push-step events (their instance names the flow and invocation)."""
    wanted = {e["platformContext"]["flowInstanceId"] for e in events
              if e["platformContext"]["flowInstanceId"] and not e["platformContext"]["flowConfigId"]}
    if not wanted:
        return
    fi, i = tables.flow_instance.c, tables.invocation.c
    async with hub.db.connect() as conn:
        found = {r["id"]: r for r in (await conn.execute(
            select(fi.id, fi.flow_id, fi.flow_version, fi.invocation_id, i.payload, i.source).join(
                tables.invocation, (i.environment_id == fi.environment_id) & (i.id == fi.invocation_id))
            .where(fi.environment_id == env, fi.id.in_(list(wanted))))).mappings()}
    for event in events:
        context = event["platformContext"]
        inst = found.get(context["flowInstanceId"])
        if inst is None or context["flowConfigId"]:
            continue
        payload = inst["payload"] or {}
        context.update(flowConfigId=inst["flow_id"], flowVersion=inst["flow_version"],
                       flowInvocationId=inst["invocation_id"],
                       triggerEventSource="test" if inst["source"] == "test" else "live",
                       metadata=payload.get("metadata") or {},
                       eventNotificationDetail=payload.get("notificationDetail") or {})


async def send_pushes(ctx: dict[str, Any], env: str, ids: list[str]) -> int:
    """Job: send (or cancel, skip, reschedule) the due notifications among ``ids``."""
    return len(await deliver(ctx["hub"], env, ids))


async def sweep_pushes(ctx: dict[str, Any], batch: int = 2000) -> int:
    """Cron job: enqueue notifications past due whose job was lost (Redis restarted, say)."""
    hub: Hub = ctx["hub"]
    async with hub.db.connect() as conn:
        due = (await conn.execute(select(N.environment_id, N.id).where(
            N.status == "scheduled", N.due_at <= now() - timedelta(seconds=30))
            .order_by(N.due_at).limit(batch))).all()
    by_env: dict[str, list[str]] = defaultdict(list)
    for env, nid in due:
        by_env[env].append(nid)
    bucket = int(now().timestamp()) // 60
    for env, ids in by_env.items():
        for job in _batches(hub, env, ids, f"s{bucket}"):
            await queue.enqueue(hub.redis, job.job_name, job.args, job.job_id)
    return len(due)


def sweep_schedule(settings: Any) -> dict[str, Any]:
    return {"second": {5, 35}, "run_at_startup": True}


# --- a flow's push step ----------------------------------------------------------------------


async def step_push(hub: Hub, env: str, inst: Mapping[str, Any], step_id: str, visit: int,
                    notification: Mapping[str, Any], platforms: Sequence[str], priority: str
                    ) -> dict[str, Any]:
    """Schedule a push step's notification and send it now if the customer's windows allow.

    Returns the step's outcome: ``{"output": summary}``, or ``{"error": ...}`` when the payload is
    too large (the flow's step fails with that reason unless it sets ``allowFailure``).
    """
    stamp = now()
    data = core.data_strings(notification.get("data"))
    data.setdefault("flowInstanceId", inst["id"])
    row = notification_row(hub, nid=notification_id(inst["id"], step_id, visit), env=env,
                           user_id=inst["user_id"],
               title=str(notification.get("title") or ""), body=str(notification.get("body") or ""),
               data=data, platforms=platforms, priority=priority, ttl=hub.settings.push_default_ttl_seconds,
               stamp=stamp, instance_id=inst["id"], step_id=step_id)
    if row["detail"]:
        return {"error": row["detail"]}
    async with transaction(hub) as tx:
        await insert_ignore(tx.conn, tables.push_notification, [row], ["id"])
    handled = (await deliver(hub, env, [row["id"]])).get(row["id"])
    if handled is None:  # a re-run: it was handled before
        async with hub.db.connect() as conn:
            handled = (await conn.execute(select(tables.push_notification).where(
                N.id == row["id"]))).mappings().first() or row
    return {"output": summary(handled)}


# --- reading ---------------------------------------------------------------------------------


async def list_notifications(hub: Hub, env: str, *, user_id: str | None = None, card_id: str | None = None,
                             status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Notifications, newest first, filtered by customer, card or status."""
    query = select(tables.push_notification).where(N.environment_id == env)
    if user_id is not None:
        query = query.where(N.user_id == user_id)
    if card_id is not None:
        query = query.where(N.card_id == card_id)
    if status is not None:
        query = query.where(N.status == status)
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(N.created_at.desc(), N.id).limit(limit))).mappings().all()
    return [summary(r) for r in rows]


async def health(hub: Hub, env: str, since: datetime) -> dict[str, Any]:
    """Devices by platform and state, send outcomes by provider since ``since``, notifications by
    status, and the providers installed."""
    devices: dict[str, dict[str, int]] = {}
    for counts in await call_hook(hub.pm, "hub_push_device_counts", hub=hub, environment_id=env):
        for platform, states in counts.items():
            mine = devices.setdefault(platform, {"valid": 0, "invalid": 0})
            for state, n in states.items():
                mine[state] = mine.get(state, 0) + int(n)
    d = tables.push_delivery.c
    sends: dict[str, dict[str, int]] = {}
    async with hub.db.connect() as conn:
        for provider, status, n in await conn.execute(
                select(d.provider, d.status, func.count()).where(d.environment_id == env, d.at >= since)
                .group_by(d.provider, d.status)):
            sends.setdefault(provider, {})[status] = int(n)
        notifications = {s: 0 for s in core.STATUSES}
        for status, n in await conn.execute(select(N.status, func.count()).where(
                N.environment_id == env, N.created_at >= since).group_by(N.status)):
            notifications[status] = int(n)
    providers = sorted({impl.plugin_name for impl in hub.pm.hook.hub_send_push.get_hookimpls()})
    return {"environmentId": env, "since": core.iso(since), "devices": devices, "sends": sends,
            "notifications": notifications, "providers": providers}


async def refresh_metrics(hub: Hub) -> None:
    """Set the push gauges of ``/metrics`` from the database (every environment)."""
    d = tables.push_delivery.c
    async with hub.db.connect() as conn:
        sends = (await conn.execute(select(d.provider, d.status, func.count()).group_by(
            d.provider, d.status))).all()
        envs = [e for (e,) in await conn.execute(select(tables.environment.c.id))]
    hub.metrics.push_sends.clear()
    for provider, status, n in sends:
        hub.metrics.push_sends.labels(provider, status).set(n)
    hub.metrics.push_devices.clear()
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for env in envs:
        for counts in await call_hook(hub.pm, "hub_push_device_counts", hub=hub, environment_id=env):
            for platform, states in counts.items():
                for state, n in states.items():
                    totals[(platform, state)] += int(n)
    for (platform, state), n in totals.items():
        hub.metrics.push_devices.labels(platform, state).set(n)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(send_pushes)
    register(sweep_pushes, cron=sweep_schedule, max_tries=1)
