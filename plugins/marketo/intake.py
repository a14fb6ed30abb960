"""From a ``submitAsyncAction`` body to a batch's planned starts, or the field at fault.

Everything Marketo could get wrong about the batch as a whole is refused here, before the 201
(400 naming the field, 413 for too many leads): the callback coordinates, the subscription,
the leads' integer ids, the chosen flows. What is wrong with one lead only (no email when the
email is the user id, a variable Hub cannot read) becomes that lead's failure in the callback.

A batch is identified by Marketo's one-time ``token`` and its ``batchid``: the same call
delivered twice is one batch, and each lead's ``flowInvocationId`` derives from the batch and
the lead id, so nothing starts twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hub.core.customers import check_user_id
from hub.core.flows import FlowDefinition
from hub_plugins.marketo.config import MarketoConfig
from hub_plugins.marketo.service import DATA_TYPES, PRIMARY, RESERVED

MAX_TEXT = 2000


class BatchRefused(Exception):
    """The batch cannot be accepted: ``status`` (400 or 413), the ``field`` and the reason."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason


@dataclass
class Plan:
    """A batch ready to store: its identity, callback coordinates and one planned start per lead."""

    batch_id: str
    marketo_batch_id: str | None
    campaign_id: int
    munchkin_id: str
    callback_url: str
    token: str
    api_callback_key: str
    leads: list[dict[str, Any]] = field(default_factory=list)


def batch_key(token: str, marketo_batch_id: str | None) -> str:
    """The batch's id: the same token and batchid always give the same one."""
    return hashlib.sha256(f"{token}\n{marketo_batch_id or ''}".encode()).hexdigest()[:32]


def invocation_id(batch_id: str, lead_id: int) -> str:
    """The lead's ``flowInvocationId``: the same on every run of the batch."""
    return f"mkto:{batch_id}:{lead_id}"


def _text(body: Mapping[str, Any], name: str, *, limit: int = MAX_TEXT) -> str:
    value = body.get(name)
    if value is None:
        raise BatchRefused(400, name, "required")
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BatchRefused(400, name, f"must be a non-empty string of at most {limit} characters")
    return value


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _callback_url(body: Mapping[str, Any]) -> str:
    url = _text(body, "callbackUrl")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BatchRefused(400, "callbackUrl", "must be an http(s) URL")
    return url


def _head(body: Any, max_leads: int) -> tuple[Plan, list[Any]]:
    if not isinstance(body, Mapping):
        raise BatchRefused(400, "body", "must be a JSON object (a submitAsyncAction invocation)")
    callback_url = _callback_url(body)
    campaign_id = body.get("campaignId")
    if campaign_id is None:
        raise BatchRefused(400, "campaignId", "required")
    if not _integer(campaign_id):
        raise BatchRefused(400, "campaignId", "must be an integer")
    token = _text(body, "token")
    api_callback_key = _text(body, "apiCallBackKey")
    raw_batch = body.get("batchid")
    if raw_batch is not None and not (
        isinstance(raw_batch, str) and len(raw_batch) <= 200 or _integer(raw_batch)
    ):
        raise BatchRefused(400, "batchid", "must be a string of at most 200 characters")
    context = body.get("context")
    subscription = context.get("subscription") if isinstance(context, Mapping) else None
    munchkin = subscription.get("munchkinId") if isinstance(subscription, Mapping) else None
    if not isinstance(munchkin, str) or not munchkin.strip() or len(munchkin) > 100:
        raise BatchRefused(
            400, "context.subscription.munchkinId", "required: the Marketo subscription's Munchkin id"
        )
    leads = body.get("objectData")
    if not isinstance(leads, list):
        raise BatchRefused(400, "objectData", "must be a list of leads")
    if not leads:
        raise BatchRefused(400, "objectData", "must hold at least one lead")
    if len(leads) > max_leads:
        raise BatchRefused(
            413, "objectData", f"at most {max_leads} leads per call (HUB_MARKETO_MAX_LEADS), got {len(leads)}"
        )
    marketo_batch_id = str(raw_batch) if raw_batch is not None else None
    plan = Plan(
        batch_key(token, marketo_batch_id),
        marketo_batch_id,
        campaign_id,
        munchkin,
        callback_url,
        token,
        api_callback_key,
    )
    return plan, leads


def _lead_parts(item: Any, index: int) -> tuple[Mapping[str, Any], Mapping[str, Any], str]:
    where = f"objectData[{index}]"
    if not isinstance(item, Mapping):
        raise BatchRefused(400, where, "must be an object")
    lead = item.get("objectContext")
    if not isinstance(lead, Mapping):
        raise BatchRefused(400, f"{where}.objectContext", "required: the lead's fields, with its id")
    if not _integer(lead.get("id")):
        raise BatchRefused(400, f"{where}.objectContext.id", "must be an integer (the Marketo lead id)")
    step = item.get("flowStepContext", {})
    if not isinstance(step, Mapping):
        raise BatchRefused(400, f"{where}.flowStepContext", "must be an object")
    flow_id = step.get(PRIMARY)
    if not isinstance(flow_id, str) or not flow_id:
        raise BatchRefused(
            400, f"{where}.flowStepContext.{PRIMARY}", "required: choose a Hub flow in the flow step"
        )
    return lead, step, flow_id


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def lead_variables(defn: FlowDefinition, step: Mapping[str, Any], lead: Mapping[str, Any]) -> dict[str, Any]:
    """The flow's variables a lead gives: the flow step's value, else the mapped lead field's."""
    values: dict[str, Any] = {}
    for variable in defn.variables:
        if variable.type not in DATA_TYPES or not variable.overridable or variable.name in RESERVED:
            continue
        value = step.get(variable.name)
        if _empty(value):
            value = lead.get(variable.name)
        if not _empty(value):
            values[variable.name] = value
    return values


def _user_id(lead: Mapping[str, Any], cfg: MarketoConfig) -> tuple[str | None, list[str] | None]:
    if cfg.user_id_from == "email":
        email = lead.get("email")
        if _empty(email) or not isinstance(email, str):
            return None, ["EMAIL_MISSING", "the lead has no email, and the email is its Hub user id"]
        user_id = email.strip()
    else:
        user_id = str(lead["id"])
    issues = check_user_id(user_id)
    if issues:
        return None, ["INVALID_USER_ID", f"user id {user_id[:80]!r}: {issues[0].reason}"]
    return user_id, None


def _metadata(plan: Plan, body: Mapping[str, Any], lead_id: int) -> dict[str, Any]:
    context = body.get("context") or {}
    out: dict[str, Any] = {
        "munchkinId": plan.munchkin_id,
        "campaignId": plan.campaign_id,
        "batchId": plan.marketo_batch_id,
        "leadId": lead_id,
    }
    for part in ("campaign", "program"):
        section = context.get(part)
        if isinstance(section, Mapping) and isinstance(section.get("name"), str):
            out[f"{part}Name"] = section["name"][:200]
    return {"marketo": out}


FlowCheck = Callable[[str], Awaitable[FlowDefinition | str]]


async def plan_batch(body: Any, cfg: MarketoConfig, max_leads: int, flow: FlowCheck) -> Plan:
    """The batch's plan, or :class:`BatchRefused` naming the field at fault.

    ``flow(flowConfigId)`` gives the flow's published definition, or why Marketo cannot start it.
    """
    plan, items = _head(body, max_leads)
    definitions: dict[str, FlowDefinition] = {}
    for index, item in enumerate(items):
        lead, step, flow_id = _lead_parts(item, index)
        if flow_id not in definitions:
            found = await flow(flow_id)
            if isinstance(found, str):
                raise BatchRefused(400, f"objectData[{index}].flowStepContext.{PRIMARY}", found)
            definitions[flow_id] = found
        user_id, error = _user_id(lead, cfg)
        plan.leads.append(
            {
                "id": lead["id"],
                "flow": flow_id,
                "user": user_id,
                "error": error,
                "variables": lead_variables(definitions[flow_id], step, lead),
                "metadata": _metadata(plan, body, lead["id"]),
            }
        )
    return plan
