"""Sending a customer a flow from the Customer Center.

Only published flows enabled for the Customer Center (``triggers.customerCenter`` in the
published version, shown as ``customerCenterEnabled``) are offered. Staff fill in the flow's
simple variables (string, number, date, boolean); object variables are not offered, so a flow
that *requires* one is listed as not sendable. The form is checked here with the engine's own
variable rules before anything is recorded.

A send starts the flow through the core trigger service
(:func:`hub.services.triggers.start_single_user_flows`, source ``customer_center``), in the same
database transaction as the audit entry ``flow.sent``: either both are recorded or neither.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.core.flows import FlowDefinition, VariableDef
from hub.core.variables import resolve_variables
from hub.services import flows as flow_service
from hub.services import triggers
from hub.services.outbox import transaction
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.staff import Staff

SOURCE = "customer_center"
SIMPLE_TYPES = ("string", "number", "date", "boolean")
INPUT_TYPES = {"string": "text", "number": "number", "date": "date", "boolean": "checkbox"}


class SendRefused(Exception):
    """The flow cannot be sent from the Customer Center (``status``: 403 not enabled, 404 unknown,
    409 not startable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _field(variable: VariableDef) -> dict[str, Any]:
    default = variable.default
    shown = (
        ""
        if default is None
        else ("true" if default is True else "false" if default is False else str(default))
    )
    return {
        "name": variable.name,
        "type": variable.type,
        "input": INPUT_TYPES[variable.type],
        "required": variable.required and default is None,
        "default": shown,
        "description": variable.description,
        "value": shown,
    }


def describe(flow: dict[str, Any], version: int, defn: FlowDefinition) -> dict[str, Any]:
    """A flow as the send page offers it: its fields, or why it cannot be sent."""
    fields = [_field(v) for v in defn.variables if v.overridable and v.type in SIMPLE_TYPES]
    blocking = [
        v.name
        for v in defn.variables
        if v.type not in SIMPLE_TYPES and v.required and v.default is None and v.overridable
    ]
    reason = ""
    if blocking:
        reason = (
            f"needs the object variable {', '.join(blocking)}, which cannot be filled in here; "
            "start it through the API instead"
        )
    elif not defn.allows(SOURCE):
        reason = "its published version does not allow the Customer Center trigger"
    return {
        "id": flow["flowConfigId"],
        "name": flow["name"],
        "description": flow["description"],
        "version": version,
        "fields": fields,
        "sendable": not reason,
        "reason": reason,
        "fixed": [{"name": v.name, "value": v.default} for v in defn.variables if not v.overridable],
    }


async def offered_flows(hub: Any, env: str) -> list[dict[str, Any]]:
    """Every published flow enabled for the Customer Center, sendable or with the reason why not."""
    page = await flow_service.list_flows(hub, env, state="published", limit=1000)
    offered = []
    for flow in page["flows"]:
        if not flow["customerCenterEnabled"]:
            continue
        try:
            version, defn = await flow_service.startable_definition(hub, env, flow["flowConfigId"])
        except (flow_service.FlowNotFound, flow_service.FlowNotPublished, flow_service.FlowArchived):
            continue
        offered.append(describe(flow, version, defn))
    return offered


async def offered_flow(hub: Any, env: str, flow_id: str) -> dict[str, Any]:
    """One flow as :func:`offered_flows` describes it; :class:`SendRefused` when it is not offered."""
    try:
        flow = await flow_service.get_flow(hub, env, flow_id)
        version, defn = await flow_service.startable_definition(hub, env, flow_id)
    except flow_service.FlowNotFound:
        raise SendRefused(404, f"there is no flow {flow_id!r}") from None
    except (flow_service.FlowNotPublished, flow_service.FlowArchived) as exc:
        raise SendRefused(409, str(exc)) from None
    if not flow["customerCenterEnabled"] or not defn.allows(SOURCE):
        raise SendRefused(403, f"flow {flow_id!r} is not enabled for the Customer Center")
    return describe(flow, version, defn) | {"definition": defn}


def read_form(flow: dict[str, Any], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The variables the form gives (typed) and the errors per variable name.

    An empty text field is "not given" (the default applies); a boolean's checkbox always gives
    true or false. The values are checked exactly as the engine will check them.
    """
    defn: FlowDefinition = flow["definition"]
    given: dict[str, Any] = {}
    for field in flow["fields"]:
        raw = form.get(f"var.{field['name']}")
        if field["type"] == "boolean":
            given[field["name"]] = raw == "true"
            field["value"] = "true" if raw == "true" else "false"
        else:
            text = (raw or "").strip() if isinstance(raw, str) else ""
            field["value"] = text
            if text:
                given[field["name"]] = text
    values, issues = resolve_variables(defn.variables, given, coerce_strings=True)
    errors = {issue.field.removeprefix("variables."): issue.reason for issue in issues}
    return {name: values[name] for name in given if name not in errors}, errors


async def send(
    hub: Any, env: str, member: Staff, user_id: str, flow: dict[str, Any], variables: dict[str, Any]
) -> dict[str, Any]:
    """Start ``flow`` for ``user_id`` with ``variables`` and record the audit entry, in one
    transaction. Returns the invocation id and the version started."""
    invocation_id = f"cc-{uuid.uuid4().hex}"
    metadata = {"sentBy": member.email, "staffId": member.id, "sentFrom": "customer center"}
    start = {
        "flowInvocationId": invocation_id,
        "userId": user_id,
        "variables": variables,
        "metadata": metadata,
    }
    try:
        async with transaction(hub) as tx:
            result = await triggers.start_single_user_flows(
                hub, tx, env, flow["id"], [start], source=SOURCE, batch_id=invocation_id
            )
            if result["rejected"]:
                raise SendRefused(422, f"{result['rejected'][0][1].field}: {result['rejected'][0][1].reason}")
            await staff_service.record(
                tx.conn,
                member,
                env,
                "flow.sent",
                user_id,
                {
                    "flowConfigId": flow["id"],
                    "flowName": flow["name"],
                    "flowVersion": result["flowVersion"],
                    "variables": variables,
                    "flowInvocationId": invocation_id,
                },
            )
    except triggers.TriggerError as exc:
        raise SendRefused(exc.status, str(exc)) from None
    return {"invocationId": invocation_id, "version": result["flowVersion"]}
