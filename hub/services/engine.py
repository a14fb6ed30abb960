"""The flow engine: walks flow instances through their steps, many at a time, durably.

A :class:`Run` is one transaction's worth of work. It advances instances step by step until each
one blocks (a delay, a wait for a card event, an HTTP call, a customer update) or ends, and
collects what they produce (cards, events, timers, jobs) to write in bulk when it is flushed.
Everything a step does is derived from ids (card ids from instance + step + visit, job ids from
the same), so a job that runs twice produces nothing new.

Instance state: ``position`` is a list of *tokens*, one per running path (``parallel`` steps make
several). A token names its ``step`` and ``visit`` and, when blocked, what it ``wait``s for.
``context`` keeps step outputs (``steps``), visit counts and parallel joins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core.analytics import build_event
from hub.core.cards import render_card
from hub.core.clock import now as clock_now
from hub.core.expressions import Expression, compile_expression
from hub.core.flows import FlowDefinition, Step
from hub.core.push import card_payload_error
from hub.db import bulk_insert, lock_for_write, tables
from hub.hookspecs import hookimpl
from hub.logging import get_logger
from hub.services import cards as card_service
from hub.services.analytics import record_events
from hub.services.outbox import Transaction, transaction

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)
FI = tables.flow_instance.c
CARD_EVENTS = {"completed": "card-completed", "dismissed": "card-dismissed",
               "cancelled": "card-cancelled", "expired": "card-expired"}
# What a step returns besides the next step id; objects, so no step id can be mistaken for one.
BLOCKED = object()
ENDED = object()
INSTANCE_NAMESPACE = uuid.UUID("0e3f6c38-2d55-4a1b-8f7a-5c9d1b2e4a60")


def instance_id_for(env: str, invocation_id: str, user_id: str) -> str:
    return str(uuid.uuid5(INSTANCE_NAMESPACE, f"{env}:{invocation_id}:{user_id}"))


@lru_cache(maxsize=1024)
def _expression(text: str) -> Expression:
    return compile_expression(text)


class StepFailed(Exception):
    """A step could not run; the instance fails with this message."""


@dataclass
class Run:
    """The work of one transaction: advance instances, then :meth:`flush` it all in bulk."""

    hub: Hub
    tx: Transaction
    env: str
    stamp: datetime = field(default_factory=clock_now)
    invocations: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_instances: list[dict[str, Any]] = field(default_factory=list)
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[tuple[str, list[Any], str, datetime | None]] = field(default_factory=list)
    _new_ids: set[str] = field(default_factory=set)

    # --- events -----------------------------------------------------------------------------

    def flow_event(self, inst: dict[str, Any], name: str, **properties: Any) -> None:
        payload = self.invocations[inst["invocation_id"]]["payload"]
        self.events.append(build_event(
            name, user_id=inst["user_id"], timestamp=self.stamp, properties=properties,
            event_context={"actionSource": "internal"},
            platform={
                "triggerEventSource": "test" if self.invocations[inst["invocation_id"]]["test"]
                else "live",
                "flowConfigId": inst["flow_id"], "flowInvocationId": inst["invocation_id"],
                "flowInstanceId": inst["id"], "flowVersion": inst["flow_version"],
                "metadata": payload.get("metadata") or {},
                "eventNotificationDetail": payload.get("notificationDetail") or {},
            },
        ))

    # --- starting and advancing -------------------------------------------------------------

    async def start(self, inst: dict[str, Any], defn: FlowDefinition, customer: dict[str, Any]) -> None:
        """A new instance: record it and run it until it blocks."""
        self.new_instances.append(inst)
        self._new_ids.add(inst["id"])
        self.flow_event(inst, "action-flow-started")
        await self.advance(inst, defn, customer, [{"step": defn.start, "path": []}])

    async def advance(self, inst: dict[str, Any], defn: FlowDefinition, customer: dict[str, Any],
                      tokens: list[dict[str, Any]]) -> None:
        """Run ``tokens`` of ``inst`` until each blocks or finishes."""
        if inst["id"] not in self._new_ids:
            self.changed[inst["id"]] = inst
        try:
            pending = list(tokens)
            while pending and inst["status"] == "active":
                token = pending.pop()
                pending.extend(await self._run_token(inst, defn, customer, token))
        except StepFailed as exc:
            self._fail(inst, str(exc))
        except Exception as exc:  # a bug or bad data must fail one instance, not the batch
            log.exception("step_crashed", instance=inst["id"])
            self._fail(inst, f"internal error: {type(exc).__name__}")
        inst["updated_at"] = self.stamp

    def _fail(self, inst: dict[str, Any], message: str) -> None:
        inst.update(status="failed", error=message, position=[], ended_at=self.stamp)
        log.warning("flow_instance_failed", instance=inst["id"], error=message)

    def _context(self, inst: dict[str, Any], customer: dict[str, Any]) -> dict[str, Any]:
        invocation = self.invocations[inst["invocation_id"]]
        return {"variables": inst["variables"], "customer": customer,
                "steps": inst["context"]["steps"],
                "invocation": {"id": inst["invocation_id"], "source": invocation["source"],
                               "metadata": invocation["payload"].get("metadata") or {}}}

    async def _run_token(self, inst: dict[str, Any], defn: FlowDefinition, customer: dict[str, Any],
                         token: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one path until it blocks (kept in ``position``) or ends; returns new paths."""
        while True:
            if token.get("step") is None:
                return self._path_done(inst, defn, token)
            step = defn.step(token["step"])
            visits = inst["context"]["visits"]
            visit = visits[step.id] = visits.get(step.id, 0) + 1
            token = {"step": step.id, "visit": visit, "path": token.get("path", [])}
            outcome = await self._run_step(inst, defn, customer, step, token)
            if outcome is BLOCKED:
                inst["position"].append(token)
                return []
            if outcome is ENDED:
                return []
            if isinstance(outcome, list):  # parallel: the children run, this path waits
                return outcome
            self.step_done(inst, step)
            token = {"step": outcome, "path": token["path"]}

    def step_done(self, inst: dict[str, Any], step: Step) -> None:
        self.flow_event(inst, "action-flow-step-completed", stepId=step.id, stepType=step.type)

    def _path_done(self, inst: dict[str, Any], defn: FlowDefinition,
                   token: dict[str, Any]) -> list[dict[str, Any]]:
        path = token.get("path") or []
        if not path:
            self._complete(inst)
            return []
        parent_step, parent_visit = path[-1]
        joins = inst["context"]["joins"]
        key = f"{parent_step}:{parent_visit}"
        joins[key] -= 1
        if joins[key] > 0:
            return []
        del joins[key]
        parent = defn.step(parent_step)
        self.step_done(inst, parent)
        return [{"step": parent.next, "path": path[:-1]}]

    def _complete(self, inst: dict[str, Any]) -> None:
        if inst["status"] == "active" and not inst["position"]:
            inst.update(status="completed", ended_at=self.stamp)
            self.flow_event(inst, "action-flow-completed")

    async def _run_step(self, inst: dict[str, Any], defn: FlowDefinition, customer: dict[str, Any],
                        step: Step, token: dict[str, Any]) -> Any:
        """Run one step. Returns the next step id (or None), BLOCKED, ENDED, or child paths."""
        config = step.config
        outputs = inst["context"]["steps"]
        if step.type == "card":
            return self._send_card(inst, defn, customer, step, token["visit"])
        if step.type == "branch":
            context = self._context(inst, customer)
            for case in config.get("cases", []):
                if _expression(case["when"]).evaluate(context):
                    outputs[step.id] = {"next": case["next"]}
                    return case["next"]
            outputs[step.id] = {"next": config.get("default")}
            return config.get("default")
        if step.type == "delay":
            token["wait"] = "delay"
            self._resume_timer(inst, token, self.stamp + timedelta(seconds=config["seconds"]), "delay")
            return BLOCKED
        if step.type == "wait_for":
            return await self._wait_for(inst, step, token)
        if step.type in ("http_request", "update_customer", "push"):
            token["wait"] = step.type
            self.jobs.append((f"{step.type}_step", [self.env, inst["id"], step.id, token["visit"]],
                              f"{step.type}:{inst['id']}:{step.id}:{token['visit']}", None))
            return BLOCKED
        if step.type == "end":
            inst["position"] = []
            self._complete(inst)
            return ENDED
        if step.type == "parallel":
            branches = config["branches"]
            inst["context"]["joins"][f"{step.id}:{token['visit']}"] = len(branches)
            path = [*token["path"], [step.id, token["visit"]]]
            return [{"step": branch, "path": path} for branch in reversed(branches)]
        plugin_step = self.hub.registry.step_types.get(step.type)
        if plugin_step is None:
            raise StepFailed(f"step type {step.type!r} is not installed")
        result = plugin_step.run({"hub": self.hub, "context": self._context(inst, customer)}, step, inst)
        if hasattr(result, "__await__"):
            result = await result
        result = result or {}
        outputs[step.id] = result.get("output", {})
        return result.get("next", step.next)

    def _send_card(self, inst: dict[str, Any], defn: FlowDefinition, customer: dict[str, Any],
                   step: Step, visit: int) -> str | None:
        template = defn.template(step.config["template"])
        invocation = self.invocations[inst["invocation_id"]]
        content = render_card(template, self._context(inst, customer))
        card_id = card_service.card_id_for(inst["id"], step.id, visit)
        if content["push"] is not None:
            # As a push step does: a push no provider would accept fails the step, with the reason.
            error = card_payload_error(content["push"], invocation["payload"].get("notificationDetail"),
                                       card_id, inst["id"])
            if error is not None:
                raise StepFailed(f"step {step.id!r}: the push of card template {template.id!r}: {error}")
        options = _card_options(invocation["payload"].get("cardOptions") or {})
        self.cards.append(card_service.new_card_row(
            env=self.env, card_id=card_id, user_id=inst["user_id"], template=template,
            content=content, instance=inst, step_id=step.id, options=options,
            test=invocation["test"], stamp=self.stamp))
        inst["context"]["steps"][step.id] = {"cardInstanceId": card_id}
        return step.next

    async def _wait_for(self, inst: dict[str, Any], step: Step, token: dict[str, Any]) -> Any:
        config = step.config
        card_id = inst["context"]["steps"].get(config["card"], {}).get("cardInstanceId")
        if card_id is None:
            raise StepFailed(f"step {step.id!r} waits for card step {config['card']!r}, which has not run")
        sent = next((c for c in self.cards if c["id"] == card_id), None)
        if sent is not None:
            status, values = sent["status"], sent["values"]
        else:
            k = tables.card.c
            status, values = (await self.tx.conn.execute(
                select(k.status, k["values"]).where(k.id == card_id))).one()
        event = CARD_EVENTS.get(status or "")
        if event is not None:  # the card closed already: decide now
            self._card_outcome(inst, config["card"], status, values)
            return self._waited(inst, step, event, event in config["events"])
        token.update(wait="card", card=card_id, events=list(config["events"]))
        if config.get("timeoutSeconds"):
            self._resume_timer(inst, token, self.stamp + timedelta(seconds=config["timeoutSeconds"]),
                               "timeout")
        return BLOCKED

    def _card_outcome(self, inst: dict[str, Any], card_step: str, status: str,
                      values: dict[str, Any] | None) -> None:
        """What the customer did with a card, for placeholders and branches:
        ``steps.<card step>.status`` and ``steps.<card step>.values.<input id>``."""
        output = inst["context"]["steps"].setdefault(card_step, {})
        output["status"] = status
        if values is not None:
            output["values"] = values

    def _waited(self, inst: dict[str, Any], step: Step, event: str | None, matched: bool) -> str | None:
        inst["context"]["steps"][step.id] = {"event": event, "matched": matched}
        return step.next if matched else (step.config.get("onTimeout") or step.next)

    def _resume_timer(self, inst: dict[str, Any], token: dict[str, Any], due: datetime, reason: str) -> None:
        self.timers.append({"environment_id": self.env, "kind": "flow_resume", "ref_id": inst["id"],
                            "due_at": due, "created_at": self.stamp,
                            "payload": {"step": token["step"], "visit": token["visit"], "reason": reason}})

    # --- resuming ---------------------------------------------------------------------------

    async def resume(self, inst: dict[str, Any], defn: FlowDefinition, customer: dict[str, Any],
                     step_id: str, visit: int, outcome: dict[str, Any]) -> bool:
        """Continue a path blocked at ``step_id``/``visit``; False if it is not blocked there."""
        token = next((t for t in inst["position"]
                      if t["step"] == step_id and t["visit"] == visit and t.get("wait")), None)
        if token is None or inst["status"] != "active":
            return False
        if token["wait"] == "card" and outcome.get("reason") != "timeout" \
                and outcome.get("card") != token.get("card"):
            return False
        inst["position"] = [t for t in inst["position"] if t is not token]
        step = defn.step(step_id)
        try:
            next_step = self._resumed_step(inst, step, token, outcome)
        except StepFailed as exc:
            self._fail(inst, str(exc))
            self.changed[inst["id"]] = inst
            return True
        self.step_done(inst, step)
        await self.advance(inst, defn, customer, [{"step": next_step, "path": token["path"]}])
        return True

    def _resumed_step(self, inst: dict[str, Any], step: Step, token: dict[str, Any],
                      outcome: dict[str, Any]) -> str | None:
        outputs = inst["context"]["steps"]
        if token["wait"] == "card":
            if outcome.get("reason") == "timeout":
                return self._waited(inst, step, None, False)
            event = outcome["event"]
            status = next(s for s, e in CARD_EVENTS.items() if e == event)
            self._card_outcome(inst, step.config["card"], status, outcome.get("values"))
            return self._waited(inst, step, event, event in token["events"])
        if token["wait"] == "http_request":
            outputs[step.id] = {"response": outcome.get("response")}
            if outcome.get("error") and not step.config.get("allowFailure"):
                raise StepFailed(f"step {step.id!r}: {outcome['error']}")
            return step.next
        if token["wait"] in ("update_customer", "push"):
            outputs[step.id] = outcome.get("output", {})
            if outcome.get("error") and not (token["wait"] == "push" and step.config.get("allowFailure")):
                raise StepFailed(f"step {step.id!r}: {outcome['error']}")
            return step.next
        return step.next  # delay

    # --- writing ----------------------------------------------------------------------------

    async def flush(self) -> None:
        conn = self.tx.conn
        if self.new_instances:
            await bulk_insert(conn, tables.flow_instance, [_row(i) for i in self.new_instances])
        if self.changed:
            await conn.execute(
                update(tables.flow_instance).where(FI.id == bindparam("b_id")).values(
                    status=bindparam("status"), context=bindparam("context"),
                    position=bindparam("position"), error=bindparam("error"),
                    updated_at=bindparam("updated_at"), ended_at=bindparam("ended_at"),
                ).execution_options(synchronize_session=False),
                [{"b_id": i["id"], **{k: i[k] for k in ("status", "context", "position", "error",
                                                         "updated_at", "ended_at")}}
                 for i in self.changed.values()],
            )
        await card_service.insert_cards(
            self.hub, self.tx, self.env, self.cards, self.invocations, self.stamp,
            announce=card_service.announces_card_changes(self.hub),
            announce_events=bool(self.hub.pm.hook.hub_analytics_event.get_hookimpls()))
        await record_events(self.tx, self.env, self.events,  # built here, so new ids
                            announce=bool(self.hub.pm.hook.hub_analytics_event.get_hookimpls()),
                            new_ids=True)
        await card_service.add_timers(self.tx, self.timers)
        for name, args, job_id, defer in self.jobs:
            await self.tx.enqueue(name, args, job_id=job_id, defer_until=defer)


_INSTANCE_COLUMNS = ("id", "environment_id", "invocation_id", "flow_id", "flow_version", "user_id",
                     "status", "variables", "context", "position", "error", "created_at",
                     "updated_at", "ended_at")


def _row(inst: dict[str, Any]) -> dict[str, Any]:
    return {k: inst[k] for k in _INSTANCE_COLUMNS}


def _card_options(raw: dict[str, Any]) -> dict[str, Any]:
    """cardOptions as stored on the invocation (ISO strings) in the types cards need."""
    options = dict(raw)
    for key in ("embargo", "expires"):
        if isinstance(options.get(key), str):
            options[key] = datetime.fromisoformat(options[key].replace("Z", "+00:00"))
    return options


def new_instance(env: str, invocation: dict[str, Any], user_id: str, stamp: datetime) -> dict[str, Any]:
    return {
        "id": instance_id_for(env, invocation["id"], user_id), "environment_id": env,
        "invocation_id": invocation["id"], "flow_id": invocation["flow_id"],
        "flow_version": invocation["flow_version"], "user_id": user_id, "status": "active",
        "variables": invocation["payload"].get("variables") or {},
        "context": {"steps": {}, "visits": {}, "joins": {}}, "position": [], "error": None,
        "created_at": stamp, "updated_at": stamp, "ended_at": None,
    }


def customer_context(row: Any) -> dict[str, Any]:
    return {"userId": row.user_id, "fields": row.fields, "tags": row.tags}


async def load_invocation(conn: AsyncConnection, env: str, invocation_id: str,
                          lock: bool = False) -> dict[str, Any] | None:
    v = tables.invocation.c
    query = select(tables.invocation).where(v.environment_id == env, v.id == invocation_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def definition(hub: Hub, conn: AsyncConnection, env: str, flow_id: str, version: int) -> FlowDefinition:
    from hub.services.flows import definition_at

    return await definition_at(conn, env, flow_id, version)


# --- resuming instances (card events, timers, finished HTTP calls) ---------------------------


async def card_event_happened(tx: Transaction, env: str, instance_id: str, card_id: str,
                              event: str, values: dict[str, Any] | None = None) -> None:
    """Called in a card's transaction: wake instance paths waiting on this card's closing."""
    if event not in CARD_EVENTS.values():
        return
    position = (await tx.conn.execute(select(FI.position).where(FI.id == instance_id))).scalar()
    for token in position or []:
        if token.get("wait") == "card" and token.get("card") == card_id:
            await tx.enqueue("resume_instance",
                             [env, instance_id, token["step"], token["visit"],
                              {"event": event, "card": card_id, "values": values}],
                             job_id=f"resume:{instance_id}:{token['step']}:{token['visit']}")


async def resume_in(hub: Hub, tx: Transaction, env: str, instance_id: str, step_id: str, visit: int,
                    outcome: dict[str, Any]) -> bool:
    """Resume one instance inside ``tx`` (locks the instance row first)."""
    await lock_for_write(tx.conn)
    query = select(tables.flow_instance).where(FI.environment_id == env, FI.id == instance_id)
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await tx.conn.execute(query)).mappings().first()
    if row is None:
        return False
    inst = dict(row)
    run = Run(hub, tx, env)
    invocation = await load_invocation(tx.conn, env, inst["invocation_id"])
    assert invocation is not None
    run.invocations[invocation["id"]] = invocation
    defn = await definition(hub, tx.conn, env, inst["flow_id"], inst["flow_version"])
    c = tables.customer.c
    customer_row = (await tx.conn.execute(select(c.user_id, c.fields, c.tags).where(
        c.environment_id == env, c.user_id == inst["user_id"]))).first()
    customer = customer_context(customer_row) if customer_row else {
        "userId": inst["user_id"], "fields": {}, "tags": []}
    resumed = await run.resume(inst, defn, customer, step_id, visit, outcome)
    if resumed:
        await run.flush()
    return resumed


async def resume_instance(ctx: dict[str, Any], env: str, instance_id: str, step_id: str, visit: int,
                          outcome: dict[str, Any]) -> bool:
    """Job: continue an instance after the event it waited for."""
    hub: Hub = ctx["hub"]
    async with transaction(hub) as tx:
        return await resume_in(hub, tx, env, instance_id, step_id, visit, outcome)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    from hub.services import fanout, steps, timers

    register(resume_instance)
    register(fanout.run_invocation)
    register(fanout.fanout_chunk)
    register(steps.http_request_step)
    register(steps.update_customer_step)
    register(steps.push_step)
    register(timers.fire_timer)
    register(timers.sweep_timers, cron=timers.sweep_schedule, max_tries=1)
    register(fanout.sweep_invocations, cron=fanout.sweep_schedule, max_tries=1)
