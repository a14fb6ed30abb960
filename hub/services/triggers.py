"""Starting flows: the one service every trigger uses (API, webhooks, SFMC, Marketo, lists, staff).

:func:`start_flows` validates every start request against the flow's published version, then in
one transaction records the invocations (and profiles for customers named by id) and, through
the outbox, the job that fans each one out. A 2xx answer therefore means the starts are durable.
Concurrent calls share that transaction (group commit, :class:`_GroupCommit`).
A repeated ``flowInvocationId`` returns the first invocation and starts nothing new.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from hub.core.clock import now
from hub.core.customers import FieldIssue, check_user_id
from hub.core.templates import parse_duration
from hub.core.variables import resolve_variables
from hub.db import bulk_insert, lock_for_write, tables
from hub.hookspecs import hookimpl
from hub.services import cards as card_service
from hub.services.customers import ensure_customers
from hub.services.flows import (
    FlowArchived,
    FlowNotFound,
    FlowNotPublished,
    published_definition,
    startable_definition,
)
from hub.services.outbox import PendingJob, transaction

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.core.flows import FlowDefinition

V = tables.invocation.c
FI = tables.flow_instance.c
INVOCATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
PLATFORMS = ("web", "ios", "android")
FILTER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists")
ITEM_KEYS = {"flowInvocationId", "target", "payload"}
PAYLOAD_KEYS = {"variables", "metadata", "notificationDetail", "cardOptions"}
FANOUT_JOB_INVOCATIONS = 2000
"""Most single-user invocations one ``run_invocations`` job fans out (batch starts are split)."""


class TriggerError(Exception):
    """A start request Hub will not act on: ``status`` and the fields at fault."""

    def __init__(self, status: int, message: str, issues: list[FieldIssue] | None = None):
        super().__init__(message)
        self.status = status
        self.issues = issues or []


class InvocationNotFound(LookupError):
    pass


# --- validation -----------------------------------------------------------------------------


def check_target(raw: Any, max_users: int, prefix: str = "target") -> tuple[dict[str, Any], list[FieldIssue]]:
    """Exactly one of ``usersById``, ``tags`` (+ ``match``), ``filter``, ``allTestUsers``."""
    if not isinstance(raw, Mapping):
        return {}, [FieldIssue(prefix, "must be an object")]
    kinds = [k for k in ("usersById", "tags", "filter", "allTestUsers") if k in raw]
    if len(kinds) != 1:
        return {}, [FieldIssue(prefix, "must have exactly one of usersById, tags, filter, allTestUsers")]
    kind = kinds[0]
    extra = set(raw) - {kind, "match"} if kind == "tags" else set(raw) - {kind}
    issues = [FieldIssue(f"{prefix}.{k}", "unknown field (unknown fields are rejected)")
              for k in sorted(extra)]
    value = raw[kind]
    if kind == "usersById":
        if not isinstance(value, list) or not value:
            return {}, [*issues, FieldIssue(f"{prefix}.usersById", "must be a non-empty list of user ids")]
        if len(value) > max_users:
            return {}, [*issues, FieldIssue(f"{prefix}.usersById", f"at most {max_users} user ids")]
        for i, user_id in enumerate(value):
            issues += check_user_id(user_id, f"{prefix}.usersById[{i}]")
        return {"usersById": list(dict.fromkeys(value))}, issues
    if kind == "tags":
        if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
            issues.append(FieldIssue(f"{prefix}.tags", "must be a non-empty list of tags"))
        match = raw.get("match", "any")
        if match not in ("any", "all"):
            issues.append(FieldIssue(f"{prefix}.match", "must be any or all"))
        return {"tags": value, "match": match}, issues
    if kind == "filter":
        rules = [{"field": k, "op": "eq", "value": v} for k, v in value.items()] \
            if isinstance(value, Mapping) else value
        if not isinstance(rules, list) or not rules:
            return {}, [*issues, FieldIssue(f"{prefix}.filter",
                                            "must be an object of field: value or a list of rules")]
        for i, rule in enumerate(rules):
            path = f"{prefix}.filter[{i}]"
            if not isinstance(rule, Mapping) or not isinstance(rule.get("field"), str):
                issues.append(FieldIssue(path, 'must be {"field", "op", "value"}'))
            elif rule.get("op", "eq") not in FILTER_OPS:
                issues.append(FieldIssue(f"{path}.op", f"must be one of {', '.join(FILTER_OPS)}"))
            elif rule.get("op") == "in" and not isinstance(rule.get("value"), list):
                issues.append(FieldIssue(f"{path}.value", "must be a list for op in"))
            elif isinstance(rule.get("value"), dict | list) and rule.get("op") != "in":
                issues.append(FieldIssue(f"{path}.value", "must be a string, number or boolean"))
        clean = [{"field": r["field"], "op": r.get("op", "eq"), "value": r.get("value")}
                 for r in rules if isinstance(r, Mapping)]
        return {"filter": clean}, issues
    if value is not True:
        issues.append(FieldIssue(f"{prefix}.allTestUsers", "must be true"))
    return {"allTestUsers": True}, issues


def _when(value: Any, field: str, issues: list[FieldIssue]) -> str | None:
    if not isinstance(value, str):
        issues.append(FieldIssue(field, "must be an ISO 8601 date-time with an offset"))
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        issues.append(FieldIssue(field, "must be an ISO 8601 date-time with an offset"))
        return None
    return parsed.isoformat()


def check_card_options(raw: Any, containers: set[str], prefix: str = "payload.cardOptions"
                       ) -> tuple[dict[str, Any], list[FieldIssue]]:
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [FieldIssue(prefix, "must be an object")]
    issues: list[FieldIssue] = []
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}.{key}"
        if key == "priority":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
                issues.append(FieldIssue(path, "must be an integer from 1 to 10"))
            else:
                clean[key] = value
        elif key in ("expires", "embargo"):
            clean[key] = _when(value, path, issues)
        elif key == "expiresInterval":
            try:
                seconds = parse_duration(value).total_seconds() if isinstance(value, str) else -1
            except ValueError:
                seconds = -1
            if seconds <= 0:
                issues.append(FieldIssue(path, "must be a positive ISO 8601 duration such as P1D"))
            else:
                clean[key] = seconds
        elif key == "targetStreamIds":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                issues.append(FieldIssue(path, "must be a non-empty list of stream container ids"))
            else:
                unknown = [v for v in value if v not in containers]
                if unknown:
                    issues.append(FieldIssue(path, f"unknown stream containers: {', '.join(unknown)}"))
                clean[key] = value
        elif key == "targetPlatforms":
            if not isinstance(value, list) or not value or not set(value) <= set(PLATFORMS):
                issues.append(FieldIssue(path, f"must be a non-empty list of {', '.join(PLATFORMS)}"))
            else:
                clean[key] = value
        else:
            issues.append(FieldIssue(path, "unknown field (unknown fields are rejected)"))
    return clean, issues


def _check_item(item: Any, index: int, max_users: int, containers: set[str]
                ) -> tuple[dict[str, Any], list[FieldIssue]]:
    prefix = f"flows[{index}]"
    if not isinstance(item, Mapping):
        return {}, [FieldIssue(prefix, "must be an object")]
    issues = [FieldIssue(f"{prefix}.{k}", "unknown field (unknown fields are rejected)")
              for k in sorted(set(item) - ITEM_KEYS)]
    invocation_id = item.get("flowInvocationId")
    if invocation_id is not None and (not isinstance(invocation_id, str)
                                      or not INVOCATION_ID.match(invocation_id)):
        issues.append(FieldIssue(f"{prefix}.flowInvocationId",
                                 "must be 1-100 letters, digits, '.', '_', ':' or '-'"))
    target, more = check_target(item.get("target"), max_users, f"{prefix}.target")
    issues += more
    payload = item.get("payload") or {}
    if not isinstance(payload, Mapping):
        return {}, [*issues, FieldIssue(f"{prefix}.payload", "must be an object")]
    issues += [FieldIssue(f"{prefix}.payload.{k}", "unknown field (unknown fields are rejected)")
               for k in sorted(set(payload) - PAYLOAD_KEYS)]
    for key in ("variables", "metadata", "notificationDetail"):
        if key in payload and not isinstance(payload[key], Mapping):
            issues.append(FieldIssue(f"{prefix}.payload.{key}", "must be an object"))
    options, more = check_card_options(payload.get("cardOptions"), containers,
                                       f"{prefix}.payload.cardOptions")
    issues += more
    return {"flowInvocationId": invocation_id, "target": target,
            "variables": dict(payload.get("variables") or {}),
            "metadata": dict(payload.get("metadata") or {}),
            "notificationDetail": dict(payload.get("notificationDetail") or {}),
            "cardOptions": options}, issues


# --- starting -------------------------------------------------------------------------------


def invocation_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "flowInvocationId": row["id"], "flowConfigId": row["flow_id"],
        "flowVersion": row["flow_version"], "source": row["source"], "test": row["test"],
        "status": row["status"], "targeted": row["targeted"], "started": row["started"],
        "target": row["target"], "createdAt": card_service.iso(row["created_at"]),
        "completedAt": card_service.iso(row["completed_at"]),
    }


async def start_flows(hub: Hub, env: str, flow_id: str, items: Sequence[Any], *,
                      source: str = "api", test: bool = False,
                      definition: tuple[int, FlowDefinition] | None = None) -> list[dict[str, Any]]:
    """Start ``flow_id`` for each item ``{flowInvocationId?, target, payload?}``; all or nothing.

    Returns one result per item: the invocation (``created`` false when its id was seen before).
    Raises :class:`TriggerError` (404 flow, 409 not startable, 422 invalid items). A caller that
    has just read the flow's ``startable_definition`` (to read its inputs into the flow's variable
    types, say) passes it as ``definition`` rather than have it read again.
    """
    version, checked = await check_flows(hub, env, flow_id, items, source=source, test=test,
                                         definition=definition)
    start = _Start(env, flow_id, version, checked, source, test, asyncio.get_running_loop().create_future())
    return await _group_commit(hub).record(start)


_CONTAINERS = select(tables.stream_container.c.id).where(
    tables.stream_container.c.environment_id == bindparam("env"))


def _names_containers(item: Any) -> bool:
    payload = item.get("payload") if isinstance(item, Mapping) else None
    options = payload.get("cardOptions") if isinstance(payload, Mapping) else None
    return isinstance(options, Mapping) and "targetStreamIds" in options


async def check_flows(hub: Hub, env: str, flow_id: str, items: Sequence[Any], *,
                      source: str = "api", test: bool = False,
                      definition: tuple[int, FlowDefinition] | None = None
                      ) -> tuple[int, list[dict[str, Any]]]:
    """Validate start requests exactly as :func:`start_flows` does, recording nothing (dry runs).

    Returns the published version and the checked items (variables resolved); raises
    :class:`TriggerError` like :func:`start_flows`.
    """
    if not items:
        raise TriggerError(422, "flows: must hold at least one start request",
                           [FieldIssue("flows", "must hold at least one item")])
    if len(items) > hub.settings.max_batch_size:
        raise TriggerError(413, "too many start requests",
                           [FieldIssue("flows", f"at most {hub.settings.max_batch_size} items")])
    try:
        version, defn = definition or await startable_definition(hub, env, flow_id)
    except FlowNotFound:
        raise TriggerError(404, f"no flow {flow_id!r} in environment {env!r}") from None
    except (FlowNotPublished, FlowArchived) as exc:
        raise TriggerError(409, str(exc), [FieldIssue("path.flowConfigId", str(exc))]) from None
    # The environment's stream containers are read only when an item names some.
    containers = ({row["id"] for row in await hub.db.read(_CONTAINERS, {"env": env})}
                  if any(_names_containers(item) for item in items) else set())
    if not defn.allows("test" if test else source):
        raise TriggerError(403, f"flow {flow_id!r} cannot be started from {source}"
                           f"{' (test)' if test else ''}: see its triggers")
    checked, issues = [], []
    for index, item in enumerate(items):
        clean, more = _check_item(item, index, hub.settings.max_batch_size, containers)
        issues += more
        if clean:
            values, var_issues = resolve_variables(defn.variables, clean["variables"])
            issues += [FieldIssue(f"flows[{index}].payload.{i.field}", i.reason) for i in var_issues]
            clean["variables"] = values
        checked.append(clean)
    if issues:
        first = issues[0]
        raise TriggerError(422, f"{first.field}: {first.reason}", issues)
    return version, checked


@dataclass
class _Start:
    """One :func:`start_flows` call waiting for the transaction that records it."""

    env: str
    flow_id: str
    version: int
    items: list[dict[str, Any]]
    source: str
    test: bool
    done: asyncio.Future[list[dict[str, Any]]]


class _GroupCommit:
    """Concurrent starts share transactions (group commit).

    A call queues its start and waits. One drain task at a time records everything queued in
    one transaction (one insert of all the invocations, one of their outbox rows, one upsert of
    the customers they name, one commit), then answers each call. Under no load a start is its
    own batch and costs what it always did; under load, while one transaction commits, the next
    fills, so the round trips and commits per start fall with the concurrency. Each call still
    gets its 2xx only after its invocation committed. If a shared transaction fails, each of its
    starts is recorded again on its own, so one start's failure is never another's.
    """

    MAX_ITEMS = 1000

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.queued: list[_Start] = []
        self.draining: asyncio.Task[None] | None = None

    async def record(self, start: _Start) -> list[dict[str, Any]]:
        self.queued.append(start)
        if self.draining is None or self.draining.done():
            self.draining = asyncio.create_task(self._drain())
        return await start.done

    async def _drain(self) -> None:
        while self.queued:
            batch, count = [], 0
            while self.queued and (not batch or count + len(self.queued[0].items) <= self.MAX_ITEMS):
                start = self.queued.pop(0)
                batch.append(start)
                count += len(start.items)
            try:
                await self._record_batch(batch)
            except BaseException as exc:  # cancelled (shutting down): nobody waits forever
                for start in (*batch, *self.queued):
                    _settle(start, exc=exc)
                self.queued.clear()
                raise

    async def _record_batch(self, batch: list[_Start]) -> None:
        try:
            results = await _record(self.hub, batch)
        except Exception as exc:
            if len(batch) == 1 and not isinstance(exc, IntegrityError):
                _settle(batch[0], exc=exc)
                return
            for start in batch:  # each on its own: one start's failure is never another's
                try:
                    _settle(start, await _record_alone(self.hub, start))
                except Exception as alone_exc:
                    _settle(start, exc=alone_exc)
            return
        for start, result in zip(batch, results, strict=True):
            _settle(start, result)


def _settle(start: _Start, result: list[dict[str, Any]] | None = None,
            exc: BaseException | None = None) -> None:
    if start.done.done():  # the caller went away (its request was cancelled)
        return
    if isinstance(exc, asyncio.CancelledError):
        start.done.cancel()
    elif exc is not None:
        start.done.set_exception(exc)
    else:
        start.done.set_result(result or [])


async def _record_alone(hub: Hub, start: _Start) -> list[dict[str, Any]]:
    for attempt in (1, 2):
        try:
            return (await _record(hub, [start]))[0]
        except IntegrityError:  # a concurrent request (another process) used the same flowInvocationId
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _group_commit(hub: Hub) -> _GroupCommit:
    found = getattr(hub, "_start_group_commit", None)
    if found is None:
        found = hub._start_group_commit = _GroupCommit(hub)  # type: ignore[attr-defined]
    return found


def _run_jobs(rows: list[dict[str, Any]]) -> list[PendingJob]:
    """The jobs that run new invocations: one ``run_invocation`` for a lone one, one
    ``run_invocations`` per environment for several started together, which runs the
    one-customer ones in one transaction (as list uploads do)."""
    by_env: dict[str, list[str]] = {}
    for row in rows:
        by_env.setdefault(row["environment_id"], []).append(row["id"])
    return [PendingJob("run_invocation", [env, ids[0]], f"invocation:{env}:{ids[0]}") if len(ids) == 1
            else PendingJob("run_invocations", [env, ids], f"invocations:{env}:{ids[0]}")
            for env, ids in by_env.items()]


async def _record(hub: Hub, batch: Sequence[_Start]) -> list[list[dict[str, Any]]]:
    """Record the starts of ``batch`` in one transaction; each start's results, in order."""
    stamp = now()
    everything: list[list[dict[str, Any]]] = []
    async with transaction(hub) as tx:
        existing: dict[tuple[str, str], Any] = {}
        given: dict[str, list[str]] = {}
        for start in batch:
            given.setdefault(start.env, []).extend(
                i["flowInvocationId"] for i in start.items if i["flowInvocationId"])
        for env, ids in given.items():
            if ids:
                rows = await tx.conn.execute(select(tables.invocation).where(
                    V.environment_id == env, V.id.in_(ids)))
                existing.update({(env, r["id"]): r for r in rows.mappings()})
        new_rows: list[dict[str, Any]] = []
        named_users: dict[str, list[str]] = {}
        for start in batch:
            results = []
            for item in start.items:
                invocation_id = item["flowInvocationId"] or str(uuid.uuid4())
                known = existing.get((start.env, invocation_id))
                if known is not None:
                    results.append({**invocation_json(known), "created": False})
                    continue
                row = {
                    "environment_id": start.env, "id": invocation_id, "flow_id": start.flow_id,
                    "flow_version": start.version, "source": "test" if start.test else start.source,
                    "test": start.test, "target": item["target"],
                    "payload": {k: item[k] for k in ("variables", "metadata", "notificationDetail",
                                                     "cardOptions")},
                    "status": "pending", "targeted": 0, "started": 0, "fanout_cursor": None,
                    "chunks_total": None, "chunks_done": 0, "error": None, "created_at": stamp,
                    "updated_at": stamp, "completed_at": None,
                }
                new_rows.append(row)
                existing[(start.env, invocation_id)] = row
                if not start.test:
                    named_users.setdefault(start.env, []).extend(item["target"].get("usersById", []))
                results.append({**invocation_json(row), "created": True})
            everything.append(results)
        if new_rows:
            await bulk_insert(tx.conn, tables.invocation, new_rows)
            await tx.enqueue_many(_run_jobs(new_rows))
        for env, users in named_users.items():
            await ensure_customers(tx.conn, env, users, row_ids=False)  # unknown users get a profile
    return everything


async def start_invocation(hub: Hub, env: str, flow_id: str, *, target: dict[str, Any],
                           variables: Mapping[str, Any] | None = None,
                           metadata: Mapping[str, Any] | None = None,
                           notification_detail: Mapping[str, Any] | None = None,
                           card_options: Mapping[str, Any] | None = None,
                           invocation_id: str | None = None, source: str = "api",
                           test: bool = False) -> dict[str, Any]:
    """Start one flow invocation (the function plugins call). See :func:`start_flows`."""
    payload: dict[str, Any] = {"variables": dict(variables or {}), "metadata": dict(metadata or {}),
                               "notificationDetail": dict(notification_detail or {})}
    if card_options:
        payload["cardOptions"] = dict(card_options)
    item: dict[str, Any] = {"target": target, "payload": payload}
    if invocation_id:
        item["flowInvocationId"] = invocation_id
    return (await start_flows(hub, env, flow_id, [item], source=source, test=test))[0]


async def start_single_user_flows(hub: Hub, tx: Any, env: str, flow_id: str,
                                  starts: Sequence[Mapping[str, Any]], *, source: str,
                                  batch_id: str, fan_out: bool = True) -> dict[str, Any]:
    """Batch entry point: record many single-user invocations of ``flow_id`` in the caller's
    transaction ``tx`` (list uploads start thousands per chunk this way).

    Each start is ``{"flowInvocationId", "userId", "variables", "metadata"}``; variables given
    as text are read as their declared type (``coerce_strings``). An id seen before starts
    nothing new (``existing``), so a re-run of the same batch is a no-op. Starts that do not
    validate are returned in ``rejected`` as ``(index, FieldIssue)`` and recorded nothing; the
    others are written in bulk with their customers' profiles, and one ``run_invocations`` job
    (id derived from ``batch_id``) fans them all out after commit. Raises :class:`TriggerError`
    when the flow cannot be started at all (404 unknown, 409 not published, 403 source refused).
    With ``fan_out=False`` the invocations are recorded ``pending`` and nothing is enqueued: the
    caller hands them to :func:`enqueue_fanout` later (in a transaction of its own), and the
    invocation sweeper runs any that are left behind.
    """
    try:
        version, defn = await published_definition(tx.conn, env, flow_id)
    except FlowNotFound:
        raise TriggerError(404, f"no flow {flow_id!r} in environment {env!r}") from None
    except (FlowNotPublished, FlowArchived) as exc:
        raise TriggerError(409, str(exc), [FieldIssue("flowConfigId", str(exc))]) from None
    if not defn.allows(source):
        raise TriggerError(403, f"flow {flow_id!r} cannot be started from {source}: see its triggers")
    rejected: list[tuple[int, FieldIssue]] = []
    checked: list[dict[str, Any]] = []
    for index, start in enumerate(starts):
        invocation_id, user_id = start.get("flowInvocationId"), start.get("userId")
        issues = check_user_id(user_id, "userId")
        if not isinstance(invocation_id, str) or not INVOCATION_ID.match(invocation_id):
            issues.append(FieldIssue("flowInvocationId",
                                     "must be 1-100 letters, digits, '.', '_', ':' or '-'"))
        values, more = resolve_variables(defn.variables, start.get("variables") or {}, coerce_strings=True)
        issues += more
        if issues:
            rejected.append((index, issues[0]))
        else:
            checked.append({"id": invocation_id, "user": user_id, "variables": values,
                            "metadata": dict(start.get("metadata") or {})})
    existing: set[str] = set()
    for lo in range(0, len(checked), 2000):
        ids = [c["id"] for c in checked[lo:lo + 2000]]
        existing |= {i for (i,) in await tx.conn.execute(select(V.id).where(
            V.environment_id == env, V.id.in_(ids)))}
    stamp = now()
    fresh = [c for c in checked if c["id"] not in existing]
    rows = [{
        "environment_id": env, "id": c["id"], "flow_id": flow_id, "flow_version": version,
        "source": source, "test": False, "target": {"usersById": [c["user"]]},
        "payload": {"variables": c["variables"], "metadata": c["metadata"], "notificationDetail": {},
                    "cardOptions": {}},
        "status": "pending", "targeted": 0, "started": 0, "fanout_cursor": None,
        "chunks_total": None, "chunks_done": 0, "error": None, "created_at": stamp,
        "updated_at": stamp, "completed_at": None,
    } for c in dict((c["id"], c) for c in fresh).values()]
    if rows:
        await bulk_insert(tx.conn, tables.invocation, rows, ignore=["environment_id", "id"])
        await ensure_customers(tx.conn, env, [r["target"]["usersById"][0] for r in rows], row_ids=False)
        if fan_out:
            await enqueue_fanout(tx, env, [r["id"] for r in rows], batch_id)
    return {"started": len(rows), "existing": len(checked) - len(fresh), "rejected": rejected,
            "flowVersion": version}


async def enqueue_fanout(tx: Any, env: str, ids: Sequence[str], batch_id: str) -> None:
    """Fan out single-user invocations after ``tx`` commits, in jobs of at most
    ``FANOUT_JOB_INVOCATIONS``, so a large batch spreads over every worker."""
    await tx.enqueue_many([
        PendingJob("run_invocations", [env, list(ids[lo:lo + FANOUT_JOB_INVOCATIONS])],
                   f"invocations:{env}:{batch_id}" + (f":{lo}" if lo else ""))
        for lo in range(0, len(ids), FANOUT_JOB_INVOCATIONS)])


async def run_invocations(ctx: dict[str, Any], env: str, invocation_ids: list[str], batch: int = 500) -> int:
    """Job: run the fan-out of invocations started together by :func:`start_single_user_flows`.

    Live invocations naming one customer are run together, ``batch`` per transaction (one engine
    run, written in bulk), doing what :func:`hub.services.fanout.run_invocation` does for a
    one-customer target; any other invocation goes through ``run_invocation`` itself. Only
    ``pending`` invocations are run and instance ids derive from invocation and user, so the
    job is safe to run twice.
    """
    from hub.services.fanout import run_invocation

    hub: Hub = ctx["hub"]
    started, others = 0, []
    for lo in range(0, len(invocation_ids), batch):
        async with transaction(hub) as tx:
            count, rest = await _run_single_user(hub, tx, env, invocation_ids[lo:lo + batch])
        started += count
        others += rest
    for invocation_id in others:
        started += await run_invocation(ctx, env, invocation_id)
    return started


async def _run_single_user(hub: Hub, tx: Any, env: str, ids: list[str]) -> tuple[int, list[str]]:
    """Create and run the instances of these pending one-customer invocations in ``tx``; returns
    how many started and the ids of the invocations that are not of that kind."""
    from hub.services import engine

    await lock_for_write(tx.conn)
    query = select(tables.invocation).where(V.environment_id == env, V.id.in_(ids), V.status == "pending")
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = [dict(r) for r in (await tx.conn.execute(query)).mappings()]
    single = [r for r in rows if not r["test"] and set(r["target"]) == {"usersById"}
              and len(r["target"]["usersById"]) == 1]
    chosen = {r["id"] for r in single}
    others = [r["id"] for r in rows if r["id"] not in chosen]
    if not single:
        return 0, others
    c = tables.customer.c
    users = list({r["target"]["usersById"][0] for r in single})
    customers = {row.user_id: row for row in await tx.conn.execute(
        select(c.id, c.user_id, c.fields, c.tags).where(c.environment_id == env, c.user_id.in_(users)))}
    done = {i for (i,) in await tx.conn.execute(select(FI.invocation_id).where(
        FI.environment_id == env, FI.invocation_id.in_([r["id"] for r in single])))}
    run = engine.Run(hub, tx, env)
    definitions: dict[tuple[str, int], Any] = {}
    results = []
    for invocation in single:
        customer = customers.get(invocation["target"]["usersById"][0])
        new = 0
        if customer is not None and invocation["id"] not in done:
            key = (invocation["flow_id"], invocation["flow_version"])
            if key not in definitions:
                definitions[key] = await engine.definition(hub, tx.conn, env, *key)
            run.invocations[invocation["id"]] = invocation
            await run.start(engine.new_instance(env, invocation, customer.user_id, run.stamp),
                            definitions[key], engine.customer_context(customer))
            new = 1
        results.append({"b_id": invocation["id"], "b_targeted": int(customer is not None),
                        "b_started": new, "b_cursor": customer.id if customer is not None else None})
    await run.flush()
    stamp = now()
    await tx.conn.execute(update(tables.invocation).where(
        V.environment_id == env, V.id == bindparam("b_id")).values(
        status="completed", targeted=bindparam("b_targeted"), started=bindparam("b_started"),
        fanout_cursor=bindparam("b_cursor"), chunks_total=1, chunks_done=1, updated_at=stamp,
        completed_at=stamp).execution_options(synchronize_session=False), results)
    return sum(r["b_started"] for r in results), others


async def get_invocation(hub: Hub, env: str, invocation_id: str) -> dict[str, Any]:
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.invocation).where(
            V.environment_id == env, V.id == invocation_id))).mappings().first()
    if row is None:
        raise InvocationNotFound(invocation_id)
    return invocation_json(row)


# --- cancelling -----------------------------------------------------------------------------


def instance_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "flowInstanceId": row["id"], "flowInvocationId": row["invocation_id"],
        "flowConfigId": row["flow_id"], "flowVersion": row["flow_version"], "userId": row["user_id"],
        "status": row["status"], "variables": row["variables"], "steps": row["context"].get("steps", {}),
        "waitingAt": [t["step"] for t in row["position"]], "error": row["error"],
        "createdAt": card_service.iso(row["created_at"]), "endedAt": card_service.iso(row["ended_at"]),
    }


async def get_instance(hub: Hub, env: str, instance_id: str) -> dict[str, Any]:
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.flow_instance).where(
            FI.environment_id == env, FI.id == instance_id))).mappings().first()
    if row is None:
        raise InvocationNotFound(instance_id)
    return instance_json(row)


async def cancel_instance_in(hub: Hub, tx: Any, env: str, instance_id: str, reason: str) -> bool:
    """Cancel an active instance and every open card it sent (in ``tx``)."""
    await lock_for_write(tx.conn)
    result = await tx.conn.execute(update(tables.flow_instance).where(
        FI.environment_id == env, FI.id == instance_id, FI.status == "active").values(
        status="cancelled", position=[], ended_at=now(), updated_at=now(), error=reason))
    if not result.rowcount:
        return False
    k = tables.card.c
    open_cards = [c for (c,) in await tx.conn.execute(select(k.id).where(
        k.environment_id == env, k.instance_id == instance_id,
        k.status.in_(("active", "embargoed", "snoozed"))))]
    for card_id in open_cards:
        await card_service.transition(hub, tx, env, card_id, "cancel", detail={"reason": reason},
                                      properties={"reason": reason})
    return True


async def cancel_instance(hub: Hub, env: str, instance_id: str, reason: str) -> bool:
    async with transaction(hub) as tx:
        exists = (await tx.conn.execute(select(FI.id).where(
            FI.environment_id == env, FI.id == instance_id))).first()
        if exists is None:
            raise InvocationNotFound(instance_id)
        return await cancel_instance_in(hub, tx, env, instance_id, reason)


async def cancel_invocation(hub: Hub, env: str, invocation_id: str, reason: str) -> dict[str, Any]:
    """Stop an invocation's fan-out and cancel its active instances (in a job, in batches)."""
    async with transaction(hub) as tx:
        await lock_for_write(tx.conn)
        row = (await tx.conn.execute(select(tables.invocation).where(
            V.environment_id == env, V.id == invocation_id))).mappings().first()
        if row is None:
            raise InvocationNotFound(invocation_id)
        await tx.conn.execute(update(tables.invocation).where(
            V.environment_id == env, V.id == invocation_id).values(
            status="cancelled", error=reason, updated_at=now(), completed_at=now()))
        await tx.enqueue("cancel_invocation_instances", [env, invocation_id, reason],
                         job_id=f"cancel:{env}:{invocation_id}")
    return await get_invocation(hub, env, invocation_id)


async def cancel_invocation_instances(ctx: dict[str, Any], env: str, invocation_id: str, reason: str,
                                      batch: int = 200) -> int:
    """Job: cancel every active instance of an invocation, a batch per transaction."""
    hub: Hub = ctx["hub"]
    total = 0
    while True:
        async with hub.db.connect() as conn:
            ids = [i for (i,) in await conn.execute(select(FI.id).where(
                FI.environment_id == env, FI.invocation_id == invocation_id,
                FI.status == "active").limit(batch))]
        if not ids:
            return total
        async with transaction(hub) as tx:
            for instance_id in ids:
                total += await cancel_instance_in(hub, tx, env, instance_id, reason)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(cancel_invocation_instances)
    register(run_invocations)
