"""What an execute call asks for: Journey Builder's inArguments read into a start request.

Values arrive as strings, keys can be spread over several ``inArguments`` objects (all are
merged, later ones win) and unknown keys are ignored (PROTOCOLS.md §6). The configuration UI
stores the flow as ``flowConfigId`` and one inArgument per flow variable, named after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from hub.core.customers import FieldIssue
from hub.core.flows import FlowDefinition
from hub.core.variables import check_value, coerce_string

FLOW_ARGUMENT = "flowConfigId"
CONTACT_KEY = "keyValue"
METADATA_KEYS = ("journeyId", "activityId", "definitionInstanceId")


class ArgumentError(ValueError):
    """The request cannot be read; ``issues`` names the fields (``inArguments.<name>``, ...)."""

    def __init__(self, issues: list[FieldIssue], status: int = 400) -> None:
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues
        self.status = status


def merge_in_arguments(raw: Any, field: str = "inArguments") -> dict[str, Any]:
    """One dict of every ``inArguments`` object's keys; :class:`ArgumentError` when not a list of objects."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ArgumentError([FieldIssue(field, "must be a list of objects")])
    merged: dict[str, Any] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ArgumentError([FieldIssue(f"{field}[{index}]", "must be an object")])
        merged.update(item)
    return merged


def flow_id_of(arguments: Mapping[str, Any]) -> str:
    value = arguments.get(FLOW_ARGUMENT)
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError([FieldIssue(f"inArguments.{FLOW_ARGUMENT}", "required: the flow to start "
                                        "(choose one in the activity's configuration)")])
    return value.strip()


def user_id_of(payload: Mapping[str, Any], arguments: Mapping[str, Any], source: str) -> str:
    """The customer's user id: the contact key, or the inArgument the settings name."""
    if source == CONTACT_KEY:
        value, field = payload.get(CONTACT_KEY, arguments.get(CONTACT_KEY)), CONTACT_KEY
    else:
        value, field = arguments.get(source), f"inArguments.{source}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError([FieldIssue(field, "required: the customer's user id (settings userIdFrom "
                                               f"is {source!r})")])
    return value.strip()


def variables_of(defn: FlowDefinition, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The flow's variables from the inArguments named after them, read as each variable's type.

    An empty string counts as not given for non-string variables (a data binding with no value).
    """
    values: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for variable in defn.variables:
        if variable.name not in arguments:
            continue
        value = arguments[variable.name]
        if value is None or (value == "" and variable.type != "string"):
            continue
        if not variable.overridable:
            continue  # the flow fixes it; a mapped argument cannot change it
        try:
            if isinstance(value, str) and variable.type != "string":
                values[variable.name] = coerce_string(variable.type, value)
            else:
                values[variable.name] = check_value(variable.type, value)
        except ValueError as exc:
            reason = f"{exc} (variable type {variable.type})"
            issues.append(FieldIssue(f"inArguments.{variable.name}", reason))
    if issues:
        raise ArgumentError(issues, 422)
    return values


def invocation_id(payload: Mapping[str, Any], user_id: str) -> str:
    """The same for every retry of one contact's execute: activityId + definitionInstanceId + contact."""
    activity = str(payload.get("activityId") or payload.get("activityObjectID") or "")
    instance = str(payload.get("definitionInstanceId") or payload.get("activityInstanceId") or "")
    if not activity or not instance:
        missing = "activityId" if not activity else "definitionInstanceId"
        raise ArgumentError([FieldIssue(missing, "required: Journey Builder sends it with every execute")])
    digest = hashlib.sha256(f"{activity}\x1f{instance}\x1f{user_id}".encode()).hexdigest()
    return f"sfmc-{digest[:48]}"


def metadata_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {key: payload[key] for key in METADATA_KEYS if isinstance(payload.get(key), str)}


def missing_required(defn: FlowDefinition, arguments: Mapping[str, Any]) -> list[FieldIssue]:
    """Required variables without a default that the activity does not map (validate)."""
    return [FieldIssue(f"inArguments.{v.name}", f"required by flow variable {v.name} ({v.type}): map it")
            for v in defn.variables
            if v.required and v.default is None and v.overridable and arguments.get(v.name) in (None, "")]
