"""Analytics API: query and export events, and take in custom events (PROTOCOLS.md §1-2).

``GET /v1/{env}/analytics/events`` pages through events oldest first; ``GET
/v1/{env}/analytics/export`` streams a time range as NDJSON or CSV; ``POST /v1/{env}/events``
records the customer's own events beside Hub's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from hub.api.problems import FieldError, Problem, invalid
from hub.app import HubDep
from hub.core import analytics as core
from hub.core.analytics import AnalyticsError
from hub.core.clock import now
from hub.core.customers import FieldIssue, check_user_id
from hub.hookspecs import hookimpl
from hub.services import analytics as service

TAGS = ["analytics"]


class AnalyticsEvent(msgspec.Struct):
    """An analytics event (PROTOCOLS.md §2); every context object holds all of its keys."""

    id: str
    endUserId: str | None
    analyticsEvent: str
    timestamp: str
    properties: dict[str, Any] = {}
    hostContext: dict[str, Any] = {}
    eventContext: dict[str, Any] = {}
    sdkContext: dict[str, Any] = {}
    streamContext: dict[str, Any] = {}
    cardContext: dict[str, Any] = {}
    platformContext: dict[str, Any] = {}


class EventPage(msgspec.Struct, rename="camel"):
    events: list[AnalyticsEvent]
    next_cursor: str | None


class CustomEvents(msgspec.Struct, forbid_unknown_fields=True):
    """Items are validated one by one, so one bad item does not reject the batch.

    Each item: ``{"userId": str, "name": kebab-case str (1-64, not a Hub event name),
    "properties"?: object, "timestamp"?: ISO 8601 date-time with offset}``.
    """

    events: list[Any]


class ItemError(msgspec.Struct):
    field: str
    reason: str


class CustomEventResult(msgspec.Struct, omit_defaults=True):
    index: int
    status: str
    userId: str | None = None
    id: str | None = None
    errors: list[ItemError] = []


class CustomEventsResponse(msgspec.Struct):
    results: list[CustomEventResult]
    accepted: int
    failed: int


def _problem(issues: list[FieldIssue]) -> Problem:
    detail = "; ".join(f"{i.field}: {i.reason}" for i in issues)
    return Problem(422, detail, errors=[FieldError(i.field, i.reason) for i in issues])


def _times(issues: list[FieldIssue], **values: str | None) -> list[datetime | None]:
    """Parse ``from`` / ``to``; a bad one adds an issue naming ``query.<name>``."""
    parsed: list[datetime | None] = []
    for name, value in values.items():
        try:
            parsed.append(core.parse_timestamp(value) if value is not None else None)
        except ValueError as exc:
            issues.append(FieldIssue(f"query.{name}", str(exc)))
            parsed.append(None)
    return parsed


def _unknown_parameters(request: Request[Any, Any, Any], known: tuple[str, ...]) -> None:
    unknown = [k for k in request.query_params if k not in known]
    if unknown:
        raise invalid(f"query.{unknown[0]}", f"unknown query parameter ({', '.join(known)})")


_EVENT_PARAMS = ("userId", "type", "flowConfigId", "from", "to", "cursor", "limit")


@get("/v1/{env:str}/analytics/events", opt={"permission": "analytics:read"}, tags=TAGS,
     summary="Query analytics events, oldest first")
async def list_events(
    request: Request[Any, Any, Any], hub: HubDep, env: FromPath[str],
    user_id: Annotated[str | None, QueryParameter(name="userId", max_length=255)] = None,
    type_: Annotated[list[str] | None, QueryParameter(
        name="type", description="Event names (analyticsEvent); repeat for any of several")] = None,
    flow_config_id: Annotated[str | None, QueryParameter(name="flowConfigId", max_length=64)] = None,
    from_: Annotated[str | None, QueryParameter(
        name="from", description="ISO 8601 date-time with offset; inclusive")] = None,
    to: Annotated[str | None, QueryParameter(
        description="ISO 8601 date-time with offset; exclusive")] = None,
    cursor: Annotated[str | None, QueryParameter(description="nextCursor of the previous page")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> EventPage:
    """Events ordered by (timestamp, id), oldest first; follow ``nextCursor`` (null on the last
    page) to read the rest of the same query."""
    _unknown_parameters(request, _EVENT_PARAMS)
    issues: list[FieldIssue] = []
    for name in type_ or []:
        issues += core.check_event_name(name, "query.type")
    if user_id is not None:
        issues += check_user_id(user_id, "query.userId")
    if flow_config_id is not None and any(ord(ch) < 32 for ch in flow_config_id):
        issues.append(FieldIssue("query.flowConfigId", "must not contain control characters"))
    start, end = _times(issues, **{"from": from_, "to": to})
    if issues:
        raise _problem(issues)
    try:
        page = await service.query_events(
            hub, env, user_id=user_id, names=type_ or [], flow_id=flow_config_id, start=start,
            end=end, cursor=cursor, limit=min(limit, hub.settings.max_page_size))
    except AnalyticsError as exc:
        raise _problem(exc.issues) from None
    return EventPage(events=msgspec.convert(page["events"], list[AnalyticsEvent]),
                     next_cursor=page["nextCursor"])


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@get("/v1/{env:str}/analytics/export", opt={"permission": "analytics:read"}, tags=TAGS,
     summary="Export analytics events as NDJSON or CSV (streamed)")
async def export_events(
    request: Request[Any, Any, Any], hub: HubDep, env: FromPath[str],
    fmt: Annotated[Literal["ndjson", "csv"], QueryParameter(name="format")] = "ndjson",
    from_: Annotated[str | None, QueryParameter(
        name="from", description="ISO 8601 date-time with offset; inclusive")] = None,
    to: Annotated[str | None, QueryParameter(
        description="ISO 8601 date-time with offset; exclusive")] = None,
) -> Stream:
    """Every event in the range, oldest first, streamed in batches. NDJSON: one event per line.
    CSV: a header row, then one row per event with the ids in columns and each context object
    as a JSON string."""
    _unknown_parameters(request, ("format", "from", "to"))
    issues: list[FieldIssue] = []
    start, end = _times(issues, **{"from": from_, "to": to})
    if issues:
        raise _problem(issues)
    try:
        chunks = service.export_events(hub, env, start=start, end=end, fmt=fmt)
    except AnalyticsError as exc:
        raise _problem(exc.issues) from None
    filename = f"hub-analytics-{_SAFE_NAME.sub('_', env)}-{now():%Y%m%dT%H%M%SZ}.{fmt}"
    return Stream(chunks, media_type=service.EXPORT_FORMATS[fmt],
                  headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@post("/v1/{env:str}/events", opt={"permission": "events:write"}, tags=TAGS, status_code=200,
      summary="Record custom events")
async def post_events(hub: HubDep, env: FromPath[str], data: JSONBody[CustomEvents]) -> CustomEventsResponse:
    """Record up to ``HUB_MAX_BATCH_SIZE`` custom events, stored and announced as analytics events
    (``eventContext.actionSource = "customer"``). Valid items are saved; each invalid item is
    reported in ``results`` with the field and the reason. Customers named for the first time
    are created."""
    limit = hub.settings.max_batch_size
    if len(data.events) > limit:
        raise Problem(413, f"events: at most {limit} items per request (HUB_MAX_BATCH_SIZE)",
                      errors=[FieldError("events", f"at most {limit} items per request")])
    if not data.events:
        raise invalid("events", "must hold at least one item")
    result = await service.record_custom_events(hub, env, data.events)
    return msgspec.convert(result, CustomEventsResponse)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (list_events, export_events, post_events):
        register(handler)
