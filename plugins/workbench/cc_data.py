"""What the Customer Center shows about one customer: their cards as the customer sees them, what
they submitted, their analytics, and the flows staff may send them.

Everything is read through the core services (cards, customers, flows, analytics); nothing here
writes a core table. Sending a flow is in :mod:`hub_plugins.workbench.cc_send`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.core.cards import INPUT_TYPES
from hub.services import analytics as analytics_service
from hub.services import cards as card_service
from hub.services import flows as flow_service

STATES: tuple[str, ...] = ("active", "snoozed", "embargoed", "completed", "dismissed", "expired", "cancelled")
"""The card states, in the order of the customer page's tabs (``active`` first, the default)."""

SEEN_EVENTS: tuple[str, ...] = ("card-displayed", "card-subview-displayed")
"""Analytics events that say the customer saw a card."""

ACTED_EVENTS: tuple[str, ...] = (
    "card-completed",
    "card-dismissed",
    "card-snoozed",
    "card-voted-up",
    "card-voted-down",
    "user-redirected",
)
"""Analytics events that say the customer acted on a card."""

CARD_PAGE = 100
"""Cards of one state and container the customer page lists at once; *Older cards* shows the next."""
SCAN_PAGE = 200
SCAN_PAGES = 10
"""The card service filters by state, not by container: one page of the customer page reads the
state's cards newest first, SCAN_PAGE at a time, keeping the container's, until it has CARD_PAGE
of them or has read SCAN_PAGES pages. Either way the page ends at a keyset cursor, so older
cards are always one link away and none is dropped."""

# An icon per input type (the path data of a 16×16 line drawing), with the name a screen reader
# reads for it.
INPUT_ICONS: dict[str, tuple[str, str]] = {
    "text": ("M3 3h10M8 3v10", "Text input"),
    "number": ("M6 2 4 14M12 2l-2 12M2 6h12M2 10h12", "Number input"),
    "date": ("M2 3h12v11H2zM2 7h12M5 1v4M11 1v4", "Date input"),
    "checkbox": ("M2 2h12v12H2zM5 8l2 2 4-4", "Checkboxes"),
    "dropdown": ("M2 3h12v10H2zM5 7l3 3 3-3", "Dropdown"),
    "toggle": ("M5 4h6a4 4 0 0 1 0 8H5a4 4 0 0 1 0-8zM11 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z", "Toggle"),
}
assert set(INPUT_ICONS) == set(INPUT_TYPES)


def when(value: datetime | str | None) -> str:
    """A time as staff read it: ``2026-01-31 14:05 UTC`` (empty for none)."""
    if value is None:
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    assert isinstance(moment, datetime)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M UTC")


def card_title(card: dict[str, Any]) -> str:
    elements = (card.get("content") or {}).get("elements") or []
    headline = next((e for e in elements if isinstance(e, dict) and e.get("type") == "headline"), None)
    return str(headline.get("text")) if headline and headline.get("text") else card["templateName"]


def submitted_inputs(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's input elements with what the customer submitted in each (for completed cards;
    empty when nothing was submitted). Checkbox and dropdown inputs list every option with
    whether it was selected."""
    values = card.get("values")
    if not isinstance(values, dict):
        return []
    shown = []
    for element in (card.get("content") or {}).get("elements") or []:
        if not isinstance(element, dict) or element.get("type") != "input":
            continue
        input_type = str(element.get("inputType"))
        value = values.get(str(element.get("id")))
        icon, icon_label = INPUT_ICONS.get(input_type, ("M2 2h12v12H2z", "Input"))
        item: dict[str, Any] = {
            "id": element.get("id"),
            "type": input_type,
            "icon": icon,
            "iconLabel": icon_label,
            "answered": value is not None,
            "label": element.get("label") or element.get("id"),
        }
        if input_type in ("checkbox", "dropdown"):
            selected = set(value) if isinstance(value, list) else {value}
            item["options"] = [
                {
                    "value": o.get("value"),
                    "label": o.get("label") or o.get("value"),
                    "selected": o.get("value") in selected,
                }
                for o in element.get("options") or []
                if isinstance(o, dict)
            ]
        elif input_type == "toggle":
            item["text"] = "On" if value is True else "Off" if value is False else ""
        else:
            item["text"] = "" if value is None else str(value)
        shown.append(item)
    return shown


async def flow_names(hub: Any, env: str) -> dict[str, str]:
    page = await flow_service.list_flows(hub, env, limit=1000)
    return {flow["flowConfigId"]: flow["name"] for flow in page["flows"]}


async def container_cards(
    hub: Any, env: str, user_id: str, state: str, container: str, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the customer's cards in ``state`` that target ``container``, newest first,
    from ``cursor`` (the card service's keyset cursor); and the cursor of the next, older page."""
    cards: list[dict[str, Any]] = []
    for _ in range(SCAN_PAGES):
        page = await card_service.list_cards(hub, env, user_id=user_id, statuses=[state], cursor=cursor,
                                              limit=SCAN_PAGE)
        cards += [c for c in page["cards"] if container in (c["targetStreamIds"] or [])]
        cursor = page["nextCursor"]
        if cursor is None or len(cards) >= CARD_PAGE:
            break
    return cards, cursor


async def customer_cards(
    hub: Any, env: str, user_id: str, state: str, container: str, cursor: str | None = None
) -> dict[str, Any]:
    """A page of the customer's cards in ``state`` that target ``container`` (see
    :data:`SCAN_PAGES`), ordered within it as their feed orders them (priority first, then
    newest), each with what staff need beside the preview; and ``nextCursor`` of older cards."""
    cards, next_cursor = await container_cards(hub, env, user_id, state, container, cursor)
    cards.sort(key=lambda c: c["publishedAt"] or c["createdAt"] or "", reverse=True)  # newest first,
    cards.sort(key=lambda c: c["priority"], reverse=True)  # then (stable) priority first
    ids = [c["cardInstanceId"] for c in cards]
    seen = await analytics_service.last_card_events(hub, env, user_id, ids, SEEN_EVENTS)
    acted = await analytics_service.last_card_events(hub, env, user_id, ids, ACTED_EVENTS)
    names = await flow_names(hub, env) if cards else {}
    return {"nextCursor": next_cursor, "cards": [
        {
            "id": c["cardInstanceId"],
            "title": card_title(c),
            "status": c["status"],
            "priority": c["priority"],
            "platforms": c["targetPlatforms"] or [],
            "streams": c["targetStreamIds"] or [],
            "expiresAt": c["expiresAt"],
            "snoozedUntil": c["snoozedUntil"],
            "embargoUntil": c["embargoUntil"],
            "createdAt": c["createdAt"],
            "publishedAt": c["publishedAt"],
            "closedAt": c["closedAt"],
            "seenAt": seen.get(c["cardInstanceId"]),
            "actedAt": acted.get(c["cardInstanceId"]),
            "flowId": c["flowConfigId"],
            "flowVersion": c["flowVersion"],
            "flowName": names.get(c["flowConfigId"] or "", c["flowConfigId"]),
            "invocationId": c["flowInvocationId"],
            "test": c["test"],
            "inputs": submitted_inputs(c),
            "preview": _preview(c),
        }
        for c in cards
    ]}


def _preview(card: dict[str, Any]) -> dict[str, Any]:
    """The card as the SDK's ``renderPreview`` takes it (feed-shaped)."""
    keys = (
        "cardInstanceId",
        "lifecycleId",
        "status",
        "priority",
        "targetStreamIds",
        "targetPlatforms",
        "templateId",
        "templateName",
        "content",
        "values",
        "flowConfigId",
        "flowInstanceId",
        "embargoUntil",
        "expiresAt",
        "snoozedUntil",
        "publishedAt",
        "updatedAt",
        "closedAt",
    )
    return {key: card.get(key) for key in keys}


def event_row(event: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One analytics event as a table row: name, time, card, flow and a summary of its properties."""
    card = event.get("cardContext") or {}
    chain = event.get("platformContext") or {}
    properties = event.get("properties") or {}
    summary = ", ".join(f"{key}: {_short(value)}" for key, value in list(properties.items())[:6])
    if len(properties) > 6:
        summary += f", … ({len(properties) - 6} more)"
    flow_id = chain.get("flowConfigId")
    return {
        "id": event.get("id"),
        "name": event.get("analyticsEvent"),
        "at": event.get("timestamp"),
        "cardId": card.get("cardInstanceId"),
        "cardName": card.get("cardTemplateName"),
        "flowId": flow_id,
        "flowName": names.get(flow_id or "", flow_id),
        "source": (event.get("eventContext") or {}).get("actionSource"),
        "properties": summary,
    }


def _short(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else repr(value)
        if not isinstance(value, dict | list)
        else f"{type(value).__name__} of {len(value)}"
    )
    return text if len(text) <= 60 else text[:59] + "…"


async def customer_events(
    hub: Any, env: str, user_id: str, cursor: str | None, limit: int = 25
) -> dict[str, Any]:
    """One page of the customer's analytics events, newest first, as table rows."""
    page = await analytics_service.recent_events(hub, env, user_id=user_id, cursor=cursor, limit=limit)
    names = await flow_names(hub, env) if page["events"] else {}
    return {"rows": [event_row(e, names) for e in page["events"]], "nextCursor": page["nextCursor"]}
