"""Journey bindings: what the lifecycle calls (save, validate, publish, stop) record.

One row per activity on a journey version (Journey Builder's ``activityObjectID``): the
arguments the configuration UI stored (the flow and the mapped variables) and the journey it is
bound to (interactionId, key, version). Lifecycle calls arrive as plain JSON, which cannot be
authenticated beyond the URL token, so they only ever change this metadata: they start nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.db import upsert_statement
from hub_plugins.salesforce_mc.arguments import ArgumentError, merge_in_arguments
from hub_plugins.salesforce_mc.tables import binding

if TYPE_CHECKING:
    from hub.app import Hub

B = binding.c
STRING_FIELDS = {"interactionId": ("interaction_id", 100), "interactionKey": ("interaction_key", 200),
                 "originalDefinitionId": ("original_definition_id", 100),
                 "interactionVersion": ("interaction_version", 20)}
MAX_ARGUMENT_KEYS = 200


def activity_id_of(body: Mapping[str, Any]) -> str:
    value = body.get("activityObjectID")
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 100:
        raise ArgumentError([FieldIssue("activityObjectID", "required: Journey Builder's id of the "
                                                            "activity (1-100 characters)")])
    return value.strip()


def stored_arguments(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The activity's inArguments when the body carries them (``inArguments``, or the activity's
    ``arguments.execute.inArguments``), merged; None when it carries none."""
    raw = body.get("inArguments")
    field = "inArguments"
    if raw is None:
        execute = ((body.get("arguments") or {}).get("execute") or {}) if isinstance(
            body.get("arguments"), Mapping) else {}
        raw = execute.get("inArguments") if isinstance(execute, Mapping) else None
        field = "arguments.execute.inArguments"
    if raw is None:
        return None
    merged = merge_in_arguments(raw, field)
    if len(merged) > MAX_ARGUMENT_KEYS:
        raise ArgumentError([FieldIssue(field, f"at most {MAX_ARGUMENT_KEYS} arguments")])
    return merged


def _journey_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (column, limit) in STRING_FIELDS.items():
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # interactionVersion is documented as a string; accept a number too
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            raise ArgumentError([FieldIssue(name, f"must be a string of at most {limit} characters")])
        values[column] = value
    return values


async def get(hub: Hub, env: str, activity_id: str) -> Any:
    async with hub.db.connect() as conn:
        return (await conn.execute(select(binding).where(
            B.environment_id == env, B.activity_object_id == activity_id))).mappings().first()


async def record(hub: Hub, env: str, kind: str, body: Mapping[str, Any], state: str) -> Any:
    """Record a lifecycle call: the journey fields given, the arguments if carried, ``state``.

    ``publish`` stamps ``published_at``; ``stop`` stamps ``stopped_at`` (the binding ends);
    ``save`` and ``validate`` never move a published or stopped binding back.
    """
    activity_id = activity_id_of(body)
    values = _journey_fields(body)
    arguments = stored_arguments(body)
    if arguments is not None:
        flow = arguments.get("flowConfigId")
        values["arguments"] = arguments
        values["flow_id"] = flow.strip()[:64] if isinstance(flow, str) and flow.strip() else None
    stamp = now()
    async with hub.db.begin() as conn:
        existing = (await conn.execute(select(binding).where(
            B.environment_id == env, B.activity_object_id == activity_id))).mappings().first()
        if existing is None:
            await conn.execute(upsert_statement(conn, binding).values(
                environment_id=env, activity_object_id=activity_id, kind=kind,
                arguments=values.pop("arguments", {}), state=state, created_at=stamp, updated_at=stamp,
                published_at=stamp if state == "published" else None,
                stopped_at=stamp if state == "stopped" else None, **values).on_conflict_do_nothing())
        else:
            if state in ("published", "stopped") or existing["state"] in ("saved", "validated"):
                values["state"] = state
            if state == "published":
                values.update(published_at=stamp, stopped_at=None)
            elif state == "stopped":
                values["stopped_at"] = stamp
            await conn.execute(update(binding).where(
                B.environment_id == env, B.activity_object_id == activity_id,
            ).values(updated_at=stamp, **values))
        return (await conn.execute(select(binding).where(
            B.environment_id == env, B.activity_object_id == activity_id))).mappings().one()


def binding_json(row: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value is not None else None

    return {"activityObjectID": row["activity_object_id"], "kind": row["kind"],
            "flowConfigId": row["flow_id"], "interactionId": row["interaction_id"],
            "interactionKey": row["interaction_key"], "interactionVersion": row["interaction_version"],
            "state": row["state"], "publishedAt": iso(row["published_at"]),
            "stoppedAt": iso(row["stopped_at"])}
