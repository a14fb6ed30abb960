"""What Marketo sees of Hub: the flows offered, the service definition and the picklist.

The flow step ("Send Hub flow") has one picklist field, ``flowConfigId`` (the published flows
Marketo may start), and one field per variable of those flows that a lead can fill, named after
the variable. The same variables may also come from lead fields mapped at installation (a
value set on the flow step wins). Hub asks for the lead's email (required when the user id is
the email) and may write back the lead fields the settings name (``writeBack``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hub.core.flows import FlowDefinition
from hub.db import tables
from hub.services.flows import definition_at
from hub_plugins.marketo.config import WRITE_BACK_FIELDS, MarketoConfig

if TYPE_CHECKING:
    from hub.app import Hub

F = tables.flow.c
MAX_CHOICES = 1000
API_NAME = "hubFlow"
PRIMARY = "flowConfigId"
# Activity attributes written on every lead's activity (besides success, reason, errorCode).
ACTIVITY_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "hubInvocationId": ("Hub invocation", "The Hub flow invocation the step started for the lead"),
    "hubUserId": ("Hub user", "The Hub user id the lead was sent to"),
}
# Names a variable cannot have as a flow-step field: Marketo reserves the first three, and flow
# fields may not share a name with an activity attribute.
RESERVED = {"success", "reason", "errorCode", PRIMARY, *ACTIVITY_ATTRIBUTES}
# Hub variable types and the Marketo data type of the field that fills them (objects cannot be
# typed in a flow step, so they are not offered).
DATA_TYPES = {"string": "text", "number": "float", "boolean": "boolean", "date": "date"}


@dataclass(frozen=True)
class OfferedFlow:
    flow_id: str
    name: str
    version: int
    definition: FlowDefinition


async def offered_flows(hub: Hub, env: str, cfg: MarketoConfig) -> list[OfferedFlow]:
    """Published, unarchived flows that allow Marketo starts and that the settings offer
    (by flowConfigId, at most :data:`MAX_CHOICES`)."""
    query = (
        select(F.id, F.name, F.published_version)
        .where(F.environment_id == env, F.archived_at.is_(None), F.published_version.is_not(None))
        .order_by(F.id)
    )
    if cfg.flows is not None:
        query = query.where(F.id.in_(cfg.flows))
    found: list[OfferedFlow] = []
    async with hub.db.connect() as conn:
        for row in (await conn.execute(query)).all():
            defn = await definition_at(conn, env, row.id, row.published_version)
            if defn.allows("marketo"):
                found.append(OfferedFlow(row.id, row.name, row.published_version, defn))
            if len(found) == MAX_CHOICES:
                break
    return found


def flow_fields(flows: list[OfferedFlow]) -> dict[str, tuple[str, str]]:
    """Variable name -> (Marketo data type, description) for every variable a lead can fill.

    A name whose flows disagree on its type is offered as text (Hub reads text as the
    variable's type when it starts the flow).
    """
    fields: dict[str, tuple[str, str]] = {}
    for flow in flows:
        for variable in flow.definition.variables:
            data_type = DATA_TYPES.get(variable.type)
            if data_type is None or not variable.overridable or variable.name in RESERVED:
                continue
            known = fields.get(variable.name)
            if known is not None and known[0] != data_type:
                fields[variable.name] = ("text", known[1])
            elif known is None:
                fields[variable.name] = (
                    data_type,
                    variable.description or f"Hub flow variable {variable.name}",
                )
    return fields


def _attribute(api_name: str, name: str, description: str, data_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiName": api_name,
        "dataType": data_type,
        "i18n": {"en_US": {"name": name, "description": description, "uiTooltip": description}},
        **extra,
    }


def service_definition(base: str, flows: list[OfferedFlow], cfg: MarketoConfig) -> dict[str, Any]:
    """The ``/getServiceDefinition`` answer (``base``: the service's URL, ``.../marketo/{env}``)."""
    variables = flow_fields(flows)
    flow_attributes = [
        _attribute(
            PRIMARY,
            "Hub flow",
            "The published Hub flow to start for each lead",
            "string",
            hasPicklist=True,
            enforcePicklistSelect=True,
            picklistUrl=f"{base}/getPicklist",
        )
    ]
    flow_attributes += [
        _attribute(name, name, description, data_type) for name, (data_type, description) in variables.items()
    ]
    lead_fields = [
        {
            "serviceAttribute": "email",
            "suggestedMarketoAttribute": "email",
            "dataType": "email",
            "required": cfg.user_id_from == "email",
            "description": {
                "en_US": "The lead's email address"
                + (" (its Hub user id)" if cfg.user_id_from == "email" else "")
            },
        }
    ]
    lead_fields += [
        {
            "serviceAttribute": name,
            "dataType": data_type,
            "required": False,
            "description": {"en_US": f"Fills the Hub variable {name} when the flow step leaves it empty"},
        }
        for name, (data_type, _) in variables.items()
        if name != "email"
    ]
    return {
        "apiName": API_NAME,
        "i18n": {
            "en_US": {
                "name": "Send Hub flow",
                "filterName": "Was sent Hub flow",
                "triggerName": "Is sent Hub flow",
                "description": "Starts a Hub flow (action cards, pushes) for each lead",
            }
        },
        "primaryAttribute": PRIMARY,
        "invocationPayloadDef": {
            "flowAttributes": flow_attributes,
            "fields": lead_fields,
            "userDrivenMapping": False,
            "subscriptionContext": True,
            "campaignContext": True,
            "programContext": True,
            "triggerContext": False,
            "programMemberContext": False,
        },
        "callbackPayloadDef": {
            "attributes": [
                _attribute(api_name, name, description, "string")
                for api_name, (name, description) in ACTIVITY_ATTRIBUTES.items()
            ],
            "fields": [
                {
                    "serviceAttribute": name,
                    "dataType": WRITE_BACK_FIELDS[name][0],
                    "description": {"en_US": WRITE_BACK_FIELDS[name][1]},
                }
                for name in cfg.write_back
            ],
            "userDrivenMapping": False,
        },
    }


def picklist(flows: list[OfferedFlow], name: str) -> list[dict[str, Any]]:
    """Choices of the ``name`` field: the offered flows for ``flowConfigId``, none for others."""
    if name != PRIMARY:
        return []
    return [
        {
            "submittedValue": flow.flow_id,
            "displayValue": {
                "en_US": f"{flow.name} ({flow.flow_id})" if flow.name != flow.flow_id else flow.flow_id
            },
        }
        for flow in flows[:MAX_CHOICES]
    ]
