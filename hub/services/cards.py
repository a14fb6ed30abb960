"""Cards: the one place a card changes state, so its history, events and hooks stay consistent.

Every change goes through :func:`transition` (or :func:`new_card_rows` for a new card), which in
the caller's transaction updates the card, appends to its history, records the analytics event,
schedules the card's timers, wakes flow instances waiting on it, and (after commit, through the
outbox) tells plugins with ``hub_card_changed``.
"""

from __future__ import annotations

import base64
import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core import lifecycle
from hub.core.analytics import build_event
from hub.core.cards import validate_submission
from hub.core.clock import now as clock_now
from hub.core.customers import FieldIssue
from hub.db import bulk_insert, insert_ignore, lock_for_write, tables
from hub.hookspecs import hookimpl
from hub.plugins import call_hook
from hub.services import push
from hub.services.analytics import record_events
from hub.services.outbox import Transaction

if TYPE_CHECKING:
    from hub.app import Hub

K = tables.card.c
CARD_NAMESPACE = uuid.UUID("6f1c2a52-8f4e-4d4b-9a57-1f0a3e2b7c10")


class CardNotFound(LookupError):
    pass


class CardActionError(ValueError):
    """An action the card's state or its inputs do not allow; ``issues`` name the fields."""

    def __init__(self, message: str, issues: list[FieldIssue] | None = None, status: int = 409):
        super().__init__(message)
        self.issues = issues or []
        self.status = status


def card_id_for(instance_id: str, step_id: str, visit: int) -> str:
    """Card ids derive from the step that sends them, so re-running a step sends nothing twice."""
    return str(uuid.uuid5(CARD_NAMESPACE, f"{instance_id}:{step_id}:{visit}"))


def iso(value: datetime | None) -> str | None:
    return _iso(value, value.tzinfo) if value is not None else None


@functools.lru_cache(maxsize=1024)
def _iso(value: datetime, _zone: Any) -> str:
    # Cached: the cards of one change (a fan-out chunk) share their timestamps. The zone is part
    # of the key because the same instant in two zones is equal, and hashes the same.
    return value.isoformat().replace("+00:00", "Z")


def card_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A card as the API, the SDK feed and ``hub_card_changed`` show it."""
    return {
        "cardInstanceId": row["id"],
        "lifecycleId": row["lifecycle_id"],
        "userId": row["user_id"],
        "status": row["status"],
        "priority": row["priority"],
        "targetStreamIds": row["streams"],
        "targetPlatforms": row["platforms"],
        "flowConfigId": row["flow_id"],
        "flowVersion": row["flow_version"],
        "flowInvocationId": row["invocation_id"],
        "flowInstanceId": row["instance_id"],
        "stepId": row["step_id"],
        "templateId": row["template_id"],
        "templateName": row["template_name"],
        "content": row["content"],
        "values": row["values"],
        "test": row["test"],
        "embargoUntil": iso(row["embargo_until"]),
        "expiresAt": iso(row["expires_at"]),
        "snoozedUntil": iso(row["snoozed_until"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "publishedAt": iso(row["published_at"]),
        "closedAt": iso(row["closed_at"]),
    }


def card_event(row: Mapping[str, Any], name: str, at: datetime, *, source: str = "internal",
               properties: Mapping[str, Any] | None = None,
               invocation: Mapping[str, Any] | None = None, event_id: str | None = None) -> dict[str, Any]:
    """The analytics event for a card, with the full id chain and contexts."""
    payload = (invocation or {}).get("payload", {})
    return build_event(
        name, user_id=row["user_id"], timestamp=at, properties=properties, event_id=event_id,
        event_context={"actionSource": source},
        card={
            "cardInstanceId": row["id"], "cardInstanceStatus": row["status"],
            "cardTemplateId": row["template_id"], "cardTemplateName": row["template_name"],
            "cardTemplateVersion": row["flow_version"], "cardPriority": row["priority"],
            "publishedAt": iso(row["published_at"]),
        },
        platform={
            "lifecycleId": row["lifecycle_id"], "targetStreamIds": row["streams"],
            "targetPlatforms": row["platforms"],
            "triggerEventSource": "test" if row["test"] else "live",
            "flowConfigId": row["flow_id"], "flowInvocationId": row["invocation_id"],
            "flowInstanceId": row["instance_id"], "flowVersion": row["flow_version"],
            "metadata": payload.get("metadata") or {},
            "eventNotificationDetail": payload.get("notificationDetail") or {},
        },
    )


# --- timers ---------------------------------------------------------------------------------


def timer_rows(env: str, row: Mapping[str, Any], stamp: datetime) -> list[dict[str, Any]]:
    """The timers a card in its current state needs (embargo end, snooze end, expiry)."""
    rows = []
    if row["status"] == "embargoed" and row["embargo_until"]:
        rows.append(("card_publish", row["embargo_until"]))
    if row["status"] == "snoozed" and row["snoozed_until"]:
        rows.append(("card_unsnooze", row["snoozed_until"]))
    if lifecycle.is_open(row["status"]) and row["expires_at"]:
        rows.append(("card_expire", row["expires_at"]))
    return [{"environment_id": env, "kind": kind, "ref_id": row["id"], "due_at": due,
             "payload": {}, "created_at": stamp} for kind, due in rows]


async def add_timers(tx: Transaction, rows: list[dict[str, Any]]) -> None:
    """Write timer rows; each also gets a deferred job (the fast path; the sweeper is the net)."""
    if not rows:
        return
    await bulk_insert(tx.conn, tables.timer, rows, ["kind", "ref_id", "due_at"])
    t = tables.timer.c
    keys = [and_(t.kind == r["kind"], t.ref_id == r["ref_id"], t.due_at == r["due_at"]) for r in rows]
    found = await tx.conn.execute(select(t.id, t.due_at).where(or_(*keys), t.fired_at.is_(None)))
    for timer_id, due in found:
        await tx.enqueue("fire_timer", [timer_id], job_id=f"timer:{timer_id}", defer_until=due)


# --- creating cards -------------------------------------------------------------------------


def new_card_row(*, env: str, card_id: str, user_id: str, template: Any, content: dict[str, Any],
                 instance: Mapping[str, Any] | None, step_id: str | None,
                 options: Mapping[str, Any], test: bool, stamp: datetime) -> dict[str, Any]:
    """A card row for a template rendered for one customer, with ``cardOptions`` applied."""
    embargo_until = options.get("embargo") or (
        stamp + timedelta(seconds=template.embargo_for) if template.embargo_for else None)
    expires_at = options.get("expires") or (
        stamp + timedelta(seconds=options["expiresInterval"]) if options.get("expiresInterval") else None
    ) or (stamp + timedelta(seconds=template.expires_in) if template.expires_in else None)
    change = lifecycle.create(embargo_until=embargo_until, now=stamp)
    return {
        "id": card_id, "environment_id": env, "lifecycle_id": card_id, "user_id": user_id,
        "instance_id": instance["id"] if instance else None,
        "invocation_id": instance["invocation_id"] if instance else None,
        "flow_id": instance["flow_id"] if instance else None,
        "flow_version": instance["flow_version"] if instance else None,
        "step_id": step_id, "template_id": template.id, "template_name": template.name,
        "status": change.status, "priority": options.get("priority") or template.priority,
        "streams": list(options.get("targetStreamIds") or template.streams),
        "platforms": list(options.get("targetPlatforms") or template.platforms),
        "content": content, "values": None, "test": test,
        "embargo_until": embargo_until, "expires_at": expires_at, "snoozed_until": None,
        "created_at": stamp, "updated_at": stamp,
        "published_at": stamp if change.status == "active" else None, "closed_at": None,
        "_event": change.event,
    }


async def insert_cards(hub: Hub, tx: Transaction, env: str, rows: list[dict[str, Any]],
                       invocations: Mapping[str, Mapping[str, Any]], stamp: datetime,
                       announce: bool, announce_events: bool = True) -> list[dict[str, Any]]:
    """Insert new cards (ignoring ids that exist: a re-run step) with history, events, timers."""
    if not rows:
        return []
    values = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    existing = {r for (r,) in await tx.conn.execute(
        select(K.id).where(K.id.in_([r["id"] for r in values])))}
    fresh = [v for v in values if v["id"] not in existing]
    if not fresh:
        return []
    await bulk_insert(tx.conn, tables.card, fresh)
    inserted_ids = {v["id"] for v in fresh}
    events = {r["id"]: r["_event"] for r in rows}
    created = [v for v in values if v["id"] in inserted_ids]
    await bulk_insert(tx.conn, tables.card_transition, [
        {"card_id": c["id"], "environment_id": env, "user_id": c["user_id"], "from_status": None,
         "to_status": c["status"], "event": events[c["id"]], "source": "internal", "detail": {},
         "at": stamp} for c in created])
    analytics = [card_event(c, events[c["id"]], stamp, invocation=invocations.get(c["invocation_id"]))
                 for c in created]
    await record_events(tx, env, analytics, announce=announce_events, new_ids=True)
    timers = [t for c in created for t in timer_rows(env, c, stamp)]
    await add_timers(tx, timers)
    await push.schedule_card_pushes(hub, tx, env, created, "newCard", stamp, invocations)
    if announce:
        await announce_changes(tx, env, [(c["id"], None, e["id"])
                                         for c, e in zip(created, analytics, strict=True)])
    return created


async def announce_changes(tx: Transaction, env: str, changes: Sequence[tuple[str, str | None, str]]) -> None:
    """Tell ``hub_card_changed`` / ``hub_cards_changed`` plugins after commit: (card id, previous
    status, event id)."""
    if changes:
        await tx.enqueue("announce_card_changes", [env, [list(c) for c in changes]],
                         job_id=f"cards:{env}:{changes[0][2]}")


# --- changing cards -------------------------------------------------------------------------


async def load_card(conn: AsyncConnection, env: str, card_id: str, *, lock: bool = False
                    ) -> dict[str, Any]:
    query = select(tables.card).where(K.environment_id == env, K.id == card_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise CardNotFound(card_id)
    return dict(row)


async def transition(hub: Hub, tx: Transaction, env: str, card_id: str, action: str, *,
                     source: str = "internal", until: datetime | None = None,
                     values: Mapping[str, Any] | None = None,
                     detail: Mapping[str, Any] | None = None,
                     properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply a lifecycle action to one card, with everything that goes with it.

    ``source`` is who acted: ``user`` (the customer, through an SDK), ``customer`` (the
    customer's own systems, through the API) or ``internal`` (Hub: timers, flows, staff).
    """
    await lock_for_write(tx.conn)
    row = await load_card(tx.conn, env, card_id, lock=True)
    stamp = clock_now()
    try:
        change = lifecycle.apply(row["status"], action, now=stamp, until=until)
    except lifecycle.InvalidTransition as exc:
        raise CardActionError(str(exc)) from None
    clean_values = None
    if action == "complete":
        elements = row["content"].get("elements", [])
        clean_values, issues = validate_submission(elements, values or {})
        if issues:
            raise CardActionError("the submitted values are not valid", issues, status=422)
    previous = row["status"]
    changes: dict[str, Any] = {"status": change.status, "updated_at": stamp,
                               "snoozed_until": change.snoozed_until}
    if clean_values is not None:
        changes["values"] = clean_values
    if change.status == "active" and row["published_at"] is None:
        changes["published_at"] = stamp
    if not lifecycle.is_open(change.status):
        changes["closed_at"] = stamp
    await tx.conn.execute(update(tables.card).where(K.id == card_id).values(**changes))
    row.update(changes)
    await tx.conn.execute(tables.card_transition.insert().values(
        card_id=card_id, environment_id=env, user_id=row["user_id"], from_status=previous,
        to_status=change.status, event=change.event, source=source, detail=dict(detail or {}),
        at=stamp))
    invocation = None
    if row["invocation_id"]:
        i = tables.invocation.c
        invocation = (await tx.conn.execute(select(i.payload).where(
            i.environment_id == env, i.id == row["invocation_id"]))).mappings().first()
    props = dict(properties or {})
    if clean_values is not None:
        props["submittedValues"] = clean_values
    if change.snoozed_until:
        props["snoozedUntil"] = iso(change.snoozed_until)
    event = card_event(row, change.event, stamp, source=source, properties=props,
                       invocation=invocation)
    await record_events(tx, env, [event],
                        announce=bool(hub.pm.hook.hub_analytics_event.get_hookimpls()))
    await add_timers(tx, timer_rows(env, row, stamp))
    await announce_changes(tx, env, [(card_id, previous, event["id"])])
    if change.status == "active" and previous != "active":
        scenario = "unsnoozedCard" if change.event == "card-unsnoozed" else "newCard"
        await push.schedule_card_pushes(hub, tx, env, [row], scenario, stamp,
                                        {row["invocation_id"]: invocation} if invocation else None,
                                        cause=event["id"] if scenario == "unsnoozedCard" else None)
    elif previous == "active":
        await push.cancel_card_pushes(tx, env, card_id, change.status, stamp)
    if row["instance_id"]:
        from hub.services.engine import card_event_happened

        await card_event_happened(tx, env, row["instance_id"], card_id, change.event, row["values"])
    return row


# --- what a customer does with a card (the SDK streams plugin calls these) ---------------


async def act(hub: Hub, env: str, card_id: str, action: str, *, user_id: str | None = None,
              values: Mapping[str, Any] | None = None, until: datetime | None = None,
              source: str = "user", properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``submit`` (with input values), ``dismiss`` or ``snooze`` (until a time) one card.

    With ``user_id`` the card must be that customer's (an SDK acts only on its user's cards).
    Raises :class:`CardNotFound` or :class:`CardActionError`.
    """
    lifecycle_action = {"submit": "complete", "dismiss": "dismiss", "snooze": "snooze"}.get(action)
    if lifecycle_action is None:
        raise CardActionError(f"unknown action {action!r}: submit, dismiss or snooze", status=422)
    from hub.services.outbox import transaction

    async with transaction(hub) as tx:
        if user_id is not None and (await load_card(tx.conn, env, card_id))["user_id"] != user_id:
            raise CardNotFound(card_id)
        row = await transition(hub, tx, env, card_id, lifecycle_action, source=source, until=until,
                               values=values, properties=properties)
    return card_json(row)


async def vote(hub: Hub, env: str, card_id: str, *, up: bool, user_id: str | None = None,
               message: str | None = None, source: str = "user") -> dict[str, Any]:
    """Record a customer's vote on a card (``card-voted-up`` / ``card-voted-down``, with an
    optional message). A vote does not change the card's state."""
    from hub.services.outbox import transaction

    async with transaction(hub) as tx:
        row = await load_card(tx.conn, env, card_id)
        if user_id is not None and row["user_id"] != user_id:
            raise CardNotFound(card_id)
        name = "card-voted-up" if up else "card-voted-down"
        event = card_event(row, name, clock_now(), source=source,
                           properties={"message": message} if message else {})
        await record_events(tx, env, [event],
                            announce=bool(hub.pm.hook.hub_analytics_event.get_hookimpls()))
    return event


# --- reading --------------------------------------------------------------------------------


def encode_cursor(created_at: datetime, card_id: str) -> str:
    return base64.urlsafe_b64encode(f"k1|{created_at.isoformat()}|{card_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, stamp, card_id = text.split("|", 2)
        if version != "k1":
            raise ValueError
        return datetime.fromisoformat(stamp), card_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this API returned") from None


async def list_cards(hub: Hub, env: str, *, user_id: str | None = None,
                     statuses: Sequence[str] = (), instance_id: str | None = None,
                     lifecycle_id: str | None = None, invocation_id: str | None = None,
                     cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Cards newest first, by keyset pages."""
    query = select(tables.card).where(K.environment_id == env)
    if user_id is not None:
        query = query.where(K.user_id == user_id)
    if statuses:
        query = query.where(K.status.in_(list(statuses)))
    if instance_id is not None:
        query = query.where(K.instance_id == instance_id)
    if lifecycle_id is not None:
        query = query.where(K.lifecycle_id == lifecycle_id)
    if invocation_id is not None:
        query = query.where(K.invocation_id == invocation_id)
    if cursor:
        stamp, last_id = decode_cursor(cursor)
        query = query.where(or_(K.created_at < stamp, and_(K.created_at == stamp, K.id < last_id)))
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(K.created_at.desc(), K.id.desc())
                                   .limit(limit + 1))).mappings().all()
    page = rows[:limit]
    return {"cards": [card_json(r) for r in page],
            "nextCursor": encode_cursor(page[-1]["created_at"], page[-1]["id"])
            if len(rows) > limit else None}


async def get_card(hub: Hub, env: str, card_id: str) -> dict[str, Any]:
    """One card with its history of transitions."""
    h = tables.card_transition.c
    async with hub.db.connect() as conn:
        row = await load_card(conn, env, card_id)
        history = (await conn.execute(select(h.from_status, h.to_status, h.event, h.source, h.detail, h.at)
                                      .where(h.card_id == card_id).order_by(h.id))).mappings().all()
    return {**card_json(row), "history": [
        {"from": r["from_status"], "to": r["to_status"], "event": r["event"], "source": r["source"],
         "detail": r["detail"], "at": iso(r["at"])} for r in history]}


async def cancel_cards(hub: Hub, env: str, card_ids: Sequence[str], reason: str,
                       source: str = "customer") -> list[dict[str, Any]]:
    """Cancel cards one by one; each result says ``cancelled``, ``not_found`` or why not."""
    from hub.services.outbox import transaction

    results = []
    for card_id in card_ids:
        try:
            async with transaction(hub) as tx:
                await transition(hub, tx, env, card_id, "cancel", source=source,
                                 detail={"reason": reason}, properties={"reason": reason})
            results.append({"cardInstanceId": card_id, "status": "cancelled"})
        except CardNotFound:
            results.append({"cardInstanceId": card_id, "status": "not_found"})
        except CardActionError as exc:
            results.append({"cardInstanceId": card_id, "status": "unchanged", "reason": str(exc)})
    return results


# --- stream containers ----------------------------------------------------------------------

CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


async def list_containers(hub: Hub, env: str) -> list[dict[str, Any]]:
    sc = tables.stream_container.c
    async with hub.db.connect() as conn:
        rows = await conn.execute(select(tables.stream_container).where(sc.environment_id == env)
                                  .order_by(sc.id))
        return [{"id": r.id, "name": r.name, "createdAt": iso(r.created_at)} for r in rows]


async def create_container(hub: Hub, env: str, container_id: str, name: str) -> tuple[dict[str, Any], bool]:
    """Create a stream container (cards target it with ``streams`` / ``targetStreamIds``);
    returns (container, created). Every environment starts with ``default``."""
    if not CONTAINER_ID.match(container_id):
        raise CardActionError("id: 1-64 letters, digits, '-' or '_'",
                              [FieldIssue("id", "must be 1-64 letters, digits, '-' or '_'")], status=422)
    if not name or len(name) > 200:
        raise CardActionError("name: 1-200 characters", [FieldIssue("name", "must be 1-200 characters")],
                              status=422)
    async with hub.db.begin() as conn:
        created = await insert_ignore(conn, tables.stream_container, {
            "environment_id": env, "id": container_id, "name": name, "created_at": clock_now()},
            ["environment_id", "id"])
    found = next(c for c in await list_containers(hub, env) if c["id"] == container_id)
    return found, bool(created)


# --- announcing -----------------------------------------------------------------------------


async def announce_card_changes(ctx: dict[str, Any], env: str, changes: list[list[Any]]) -> int:
    """Job: tell ``hub_cards_changed`` (the whole batch) and ``hub_card_changed`` (each change)
    plugins, at least once (they de-duplicate on eventId)."""
    hub: Hub = ctx["hub"]
    if not announces_card_changes(hub):
        return 0
    ids = [c[0] for c in changes]
    async with hub.db.connect() as conn:
        rows = {r["id"]: r for r in (await conn.execute(
            select(tables.card).where(K.environment_id == env, K.id.in_(ids)))).mappings()}
    told = []
    for card_id, previous, event_id in changes:
        row = rows.get(card_id)
        if row is None:  # erased since
            continue
        card = {**card_json(row), "environmentId": env}
        told.append({"card": card, "previous": None if previous is None else {**card, "status": previous},
                     "context": {"environmentId": env, "eventId": event_id,
                                 "reason": "created" if previous is None else card["status"]}})
    if told and hub.pm.hook.hub_cards_changed.get_hookimpls():
        await call_hook(hub.pm, "hub_cards_changed", hub=hub, changes=told)
    if hub.pm.hook.hub_card_changed.get_hookimpls():
        for change in told:
            await call_hook(hub.pm, "hub_card_changed", hub=hub, **change)
    return len(changes)


def announces_card_changes(hub: Hub) -> bool:
    """Whether a plugin listens to card changes (``hub_card_changed`` or ``hub_cards_changed``)."""
    return bool(hub.pm.hook.hub_card_changed.get_hookimpls() or hub.pm.hook.hub_cards_changed.get_hookimpls())


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(announce_card_changes, inline=True)
