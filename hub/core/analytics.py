"""Analytics events: their names, their shape (PROTOCOLS.md §2), and the checks on what comes in.

Pure: the engine builds platform events with :func:`build_event`, the custom events API checks its
items with :func:`check_custom_event`, SDK ingest checks its batches with :func:`check_sdk_event`,
and exports flatten events with :func:`csv_row`. Storing and announcing them is
``hub.services.analytics``.

Every event has every top-level key, and every context object has every key of its kind
(``None`` where it does not apply), so consumers and CSV columns see one stable shape.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hub.core.customers import FieldIssue, check_user_id
from hub.core.ids import ordered_uuid

PLATFORM_EVENTS: Final[frozenset[str]] = frozenset({
    "card-published", "card-completed", "card-dismissed", "card-snoozed", "card-unsnoozed",
    "card-expired", "card-cancelled", "card-embargoed", "card-error", "notification-sent",
    "segment-entered", "segment-exited", "action-flow-started", "action-flow-step-completed",
    "action-flow-completed",
})
"""Events Hub itself emits (the engine, card lifecycle, push)."""

SDK_EVENTS: Final[frozenset[str]] = frozenset({
    "card-displayed", "card-subview-displayed", "card-subview-exited", "card-voted-up",
    "card-voted-down", "notification-received", "request-failed", "runtime-vars-updated",
    "snooze-options-displayed", "snooze-options-canceled", "stream-displayed", "user-redirected",
    "sdk-initialized", "video-played", "video-completed",
})
"""Events end-user SDKs report through ``POST /v1/{env}/sdk/events``."""

RESERVED_EVENTS: Final[frozenset[str]] = PLATFORM_EVENTS | SDK_EVENTS
"""Names a custom event may not take."""

ACTION_SOURCES: Final[frozenset[str]] = frozenset({"internal", "user", "customer"})
TRIGGER_SOURCES: Final[frozenset[str]] = frozenset({"live", "test"})
SDK_PLATFORMS: Final[frozenset[str]] = frozenset({"Web", "iOS", "Android"})
DISPLAY_MODES: Final[frozenset[str]] = frozenset({"stream", "single"})

EVENT_CONTEXT_KEYS: Final = ("actionSource", "ip", "userLocalTimestamp")
SDK_CONTEXT_KEYS: Final = ("platform", "sdkVersion", "sdkDevice", "sdkTimezone", "containerId",
                           "isDnDActive")
STREAM_CONTEXT_KEYS: Final = ("displayMode", "streamId", "streamName", "streamLengthVisible",
                              "cardPositionInStream")
CARD_CONTEXT_KEYS: Final = ("cardInstanceId", "cardInstanceStatus", "cardViewState", "cardTemplateId",
                            "cardTemplateName", "cardTemplateVersion", "cardPresentation",
                            "cardTemplateSettings", "publishedAt", "cardPriority")
PLATFORM_CONTEXT_KEYS: Final = ("lifecycleId", "targetStreamIds", "targetPlatforms",
                                "triggerEventSource", "eventDetail", "flowConfigId",
                                "flowInvocationId", "flowInstanceId", "flowVersion", "metadata",
                                "eventNotificationDetail")

TOP_LEVEL_KEYS: Final = ("id", "endUserId", "analyticsEvent", "timestamp", "properties",
                         "hostContext", "eventContext", "sdkContext", "streamContext", "cardContext",
                         "platformContext")

CSV_COLUMNS: Final = ("id", "timestamp", "analyticsEvent", "endUserId", "flowConfigId",
                      "flowInvocationId", "flowInstanceId", "cardInstanceId", "properties",
                      "hostContext", "eventContext", "sdkContext", "streamContext", "cardContext",
                      "platformContext")
"""Export columns: the ids flat (for spreadsheets), then each object as a JSON string."""

EVENT_NAME: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
EVENT_NAME_MAX: Final = 64
PROPERTIES_MAX_BYTES: Final = 16_384
PROPERTIES_MAX_DEPTH: Final = 32
MAX_FUTURE: Final = timedelta(days=1)
"""How far ahead of the server's clock an event may be dated (clients' clocks drift)."""


class AnalyticsError(ValueError):
    """Bad input to a query or export; ``issues`` name the parameters (``query.from``)."""

    def __init__(self, issues: list[FieldIssue]):
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


# --- time -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def format_timestamp(value: datetime) -> str:
    """``2024-05-01T12:00:00.123Z``: UTC, milliseconds, ``Z``. A naive datetime is a ValueError.

    Cached: the events of one change (every event of a fan-out chunk) share their timestamp."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: analytics timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 date-time with an offset (or ``Z``), as an aware UTC datetime.

    ValueError for anything else, including a date-time without an offset (its zone is unknown).
    """
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2024-05-01T12:00:00Z")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2024-05-01T12:00:00Z"
                         ) from None
    if value.tzinfo is None:
        raise ValueError("must have a UTC offset or Z (e.g. 2024-05-01T12:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first representable instant
        raise ValueError("is out of range") from None


def event_timestamp(event: Mapping[str, Any]) -> datetime:
    """The stored column value of an event built by :func:`build_event`."""
    return _parse_stored(str(event["timestamp"]))


@functools.lru_cache(maxsize=256)
def _parse_stored(text: str) -> datetime:
    # The events of one change share a timestamp: parse each distinct one once.
    return parse_timestamp(text)


# --- building -------------------------------------------------------------------------------


_SHAPES: Final[dict[str, tuple[dict[str, None], frozenset[str]]]] = {}
"""Per context kind: every key set to ``None`` (copied for each event: ``dict.copy`` is several
times faster than ``dict.fromkeys``) and the known keys."""


def _context(kind: str, keys: tuple[str, ...], given: Mapping[str, Any] | None,
             defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # Built for every event the engine records (several per card): kept to C-level dict work.
    shape = _SHAPES.get(kind)
    if shape is None:
        shape = _SHAPES[kind] = (dict.fromkeys(keys), frozenset(keys))
    context = shape[0].copy()
    if defaults:
        context.update(defaults)
    if given:
        if not given.keys() <= shape[1]:  # a misspelt key would silently vanish from every export
            unknown = sorted(set(given) - shape[1])
            raise ValueError(f"{kind}: unknown keys {unknown}; known: {list(keys)}")
        context.update(given)
    return context


def build_event(name: str, *, user_id: str | None, timestamp: datetime,
                properties: Mapping[str, Any] | None = None,
                event_context: Mapping[str, Any] | None = None,
                card: Mapping[str, Any] | None = None,
                platform: Mapping[str, Any] | None = None,
                sdk_context: Mapping[str, Any] | None = None,
                stream_context: Mapping[str, Any] | None = None,
                host_context: Mapping[str, Any] | None = None,
                event_id: str | None = None) -> dict[str, Any]:
    """One analytics event in the shape of PROTOCOLS.md §2, ready to store and announce.

    ``card`` holds ``cardContext`` keys, ``platform`` ``platformContext`` keys; every context
    gets all of its keys (``None`` when not given) and an unknown key is a ValueError.
    ``eventContext.actionSource`` defaults to ``internal``. ``id`` is a new UUID unless
    ``event_id`` names one (use that to make a re-run record the same event).
    """
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name) or len(name) > EVENT_NAME_MAX:
        raise ValueError(f"event name {name!r} is not kebab-case of at most {EVENT_NAME_MAX} characters")
    event_ctx = _context("eventContext", EVENT_CONTEXT_KEYS, event_context, {"actionSource": "internal"})
    if event_ctx["actionSource"] not in tuple(ACTION_SOURCES):
        raise ValueError(f"eventContext.actionSource must be one of {sorted(ACTION_SOURCES)}")
    platform_ctx = _context("platformContext", PLATFORM_CONTEXT_KEYS, platform)
    source = platform_ctx["triggerEventSource"]
    if source is not None and source not in tuple(TRIGGER_SOURCES):
        raise ValueError(f"platformContext.triggerEventSource must be one of {sorted(TRIGGER_SOURCES)}")
    return {
        "id": event_id or ordered_uuid(),
        "endUserId": user_id,
        "analyticsEvent": name,
        "timestamp": format_timestamp(timestamp),
        "properties": dict(properties or {}),
        "hostContext": dict(host_context or {}),
        "eventContext": event_ctx,
        "sdkContext": _context("sdkContext", SDK_CONTEXT_KEYS, sdk_context),
        "streamContext": _context("streamContext", STREAM_CONTEXT_KEYS, stream_context),
        "cardContext": _context("cardContext", CARD_CONTEXT_KEYS, card),
        "platformContext": platform_ctx,
    }


def event_columns(event: Mapping[str, Any]) -> dict[str, Any]:
    """The indexed columns of the ``hub_analytics_event`` row that stores ``event``."""
    card = event.get("cardContext") or {}
    chain = event.get("platformContext") or {}
    return {
        "id": event["id"], "user_id": event.get("endUserId"), "name": event["analyticsEvent"],
        "timestamp": event_timestamp(event), "flow_id": chain.get("flowConfigId"),
        "invocation_id": chain.get("flowInvocationId"), "instance_id": chain.get("flowInstanceId"),
        "card_id": card.get("cardInstanceId"),
    }


# --- exports --------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def csv_row(event: Mapping[str, Any]) -> list[str]:
    """The event as text cells in :data:`CSV_COLUMNS` order (objects as compact JSON)."""
    chain = event.get("platformContext") or {}
    card = event.get("cardContext") or {}
    flat = {"flowConfigId": chain.get("flowConfigId"), "flowInvocationId": chain.get("flowInvocationId"),
            "flowInstanceId": chain.get("flowInstanceId"), "cardInstanceId": card.get("cardInstanceId")}
    return [_cell(flat[c] if c in flat else event.get(c)) for c in CSV_COLUMNS]


# --- checks on what comes in ----------------------------------------------------------------


def check_event_name(name: Any, field: str = "name") -> list[FieldIssue]:
    """A well-formed event name: kebab-case (``a-z``, ``0-9``, single hyphens), 1-64 characters."""
    if not isinstance(name, str) or not name:
        return [FieldIssue(field, "must be a non-empty string")]
    if len(name) > EVENT_NAME_MAX:
        return [FieldIssue(field, f"must be at most {EVENT_NAME_MAX} characters")]
    if not EVENT_NAME.fullmatch(name):
        return [FieldIssue(field, "must be kebab-case: lower-case letters and digits joined by "
                                  "single hyphens, e.g. order-placed")]
    return []


def check_properties(value: Any, field: str = "properties") -> list[FieldIssue]:
    """A JSON object of at most 16 KiB, nested at most 32 deep, with no NUL in any string.

    (PostgreSQL cannot store NUL in JSONB, so it is refused here rather than failing later.)
    """
    if not isinstance(value, Mapping):
        return [FieldIssue(field, "must be an object")]
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > PROPERTIES_MAX_DEPTH:
            return [FieldIssue(field, f"must be nested at most {PROPERTIES_MAX_DEPTH} levels deep")]
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str) or "\x00" in key:
                    return [FieldIssue(field, "keys must be strings without the NUL character")]
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return [FieldIssue(field, "must not contain the NUL character")]
        elif item is not None and not isinstance(item, bool | int | float):
            return [FieldIssue(field, "must hold only JSON values")]
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except ValueError:
        return [FieldIssue(field, "must hold only finite numbers")]
    if size > PROPERTIES_MAX_BYTES:
        return [FieldIssue(field, f"must be at most {PROPERTIES_MAX_BYTES} bytes as JSON (is {size})")]
    return []


def check_event_time(value: Any, now: datetime, field: str = "timestamp"
                     ) -> tuple[datetime | None, list[FieldIssue]]:
    """A client-given event time: ISO 8601 with an offset, at most a day ahead of ``now``."""
    try:
        when = parse_timestamp(value)
    except ValueError as exc:
        return None, [FieldIssue(field, str(exc))]
    if when > now + MAX_FUTURE:
        return None, [FieldIssue(field, "must not be more than one day in the future")]
    return when, []


CUSTOM_EVENT_KEYS: Final = frozenset({"userId", "name", "properties", "timestamp"})


def check_custom_event(item: Any, now: datetime) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Check one item of ``POST /v1/{env}/events``; returns (clean item, issues).

    Paths are relative to the item. A custom event's name is kebab-case, 1-64 characters, and
    not one of Hub's own (platform or SDK) event names; ``timestamp`` defaults to ``now``.
    """
    if not isinstance(item, Mapping):
        return {}, [FieldIssue("", "must be an object")]
    issues = [FieldIssue(str(k), "unknown field (unknown fields are rejected)")
              for k in item if k not in CUSTOM_EVENT_KEYS]
    issues += check_user_id(item.get("userId"))
    name = item.get("name")
    name_issues = check_event_name(name)
    if not name_issues and name in RESERVED_EVENTS:
        name_issues = [FieldIssue("name", f"{name!r} is one of Hub's own event names; "
                                          "custom events need a name of their own")]
    issues += name_issues
    properties = item.get("properties")
    if properties is not None:
        issues += check_properties(properties)
    when = now
    if item.get("timestamp") is not None:
        parsed, time_issues = check_event_time(item["timestamp"], now)
        issues += time_issues
        when = parsed or now
    clean = {"userId": item.get("userId"), "name": name, "properties": dict(properties or {}),
             "timestamp": when}
    return clean, issues


SDK_EVENT_KEYS: Final = frozenset({"id", "analyticsEvent", "timestamp", "properties", "hostContext",
                                   "sdkContext", "streamContext", "cardInstanceId", "cardViewState",
                                   "userLocalTimestamp"})
CARD_SDK_EVENTS: Final = frozenset({"card-displayed", "card-subview-displayed", "card-subview-exited",
                                    "card-voted-up", "card-voted-down", "snooze-options-displayed",
                                    "snooze-options-canceled"})
"""SDK events about one card: they must name its ``cardInstanceId``."""


def _check_context(raw: Any, field: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], list[FieldIssue]]:
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [FieldIssue(field, "must be an object")]
    issues = [FieldIssue(f"{field}.{k}", "unknown field (unknown fields are rejected)")
              for k in raw if k not in keys]
    issues += check_properties(raw, field)
    return dict(raw), issues


def check_sdk_event(raw: Any, now: datetime | None = None) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Check one event an SDK reports; returns (fields, issues), paths relative to the event.

    ``fields`` has ``name``, ``event_id`` (the client's UUID, for de-duplication, or ``None``),
    ``timestamp`` (``None``: use the time of receipt), ``properties``, ``host_context``,
    ``sdk_context``, ``stream_context``, ``card_instance_id``, ``card_view_state`` and
    ``user_local_timestamp``. The ingest route fills the rest (``eventContext.ip``, the card's
    and flow's contexts from the stored card) and calls :func:`build_event` with
    ``actionSource = "user"``. Only :data:`SDK_EVENTS` are accepted; card events need a
    ``cardInstanceId``.
    """
    if not isinstance(raw, Mapping):
        return {}, [FieldIssue("", "must be an object")]
    now = now or datetime.now(UTC)
    issues = [FieldIssue(str(k), "unknown field (unknown fields are rejected)")
              for k in raw if k not in SDK_EVENT_KEYS]
    name = raw.get("analyticsEvent")
    if not isinstance(name, str) or name not in SDK_EVENTS:
        issues.append(FieldIssue("analyticsEvent", f"must be one of the SDK events: {sorted(SDK_EVENTS)}"))
    event_id = raw.get("id")
    if event_id is not None:
        try:
            event_id = str(uuid.UUID(str(event_id)))
        except ValueError:
            issues.append(FieldIssue("id", "must be a UUID"))
    timestamp = None
    if raw.get("timestamp") is not None:
        timestamp, more = check_event_time(raw["timestamp"], now)
        issues += more
    properties = raw.get("properties") or {}
    issues += check_properties(properties)
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    if name == "card-voted-down" and not isinstance(props.get("message", ""), str):
        issues.append(FieldIssue("properties.message", "must be a string"))
    if name == "runtime-vars-updated" and not isinstance(props.get("resolvedVariables"), Mapping):
        issues.append(FieldIssue("properties.resolvedVariables", "must be an object"))
    host = raw.get("hostContext") or {}
    issues += check_properties(host, "hostContext")  # the host app's own, free-form
    sdk, more = _check_context(raw.get("sdkContext"), "sdkContext", SDK_CONTEXT_KEYS)
    issues += more
    # membership in a tuple, not a set: an unhashable value (a list) is then an issue, not a TypeError
    if sdk.get("platform") is not None and sdk["platform"] not in tuple(SDK_PLATFORMS):
        issues.append(FieldIssue("sdkContext.platform", f"must be one of {sorted(SDK_PLATFORMS)}"))
    stream, more = _check_context(raw.get("streamContext"), "streamContext", STREAM_CONTEXT_KEYS)
    issues += more
    if stream.get("displayMode") is not None and stream["displayMode"] not in tuple(DISPLAY_MODES):
        issues.append(FieldIssue("streamContext.displayMode", f"must be one of {sorted(DISPLAY_MODES)}"))
    card_id = raw.get("cardInstanceId")
    if card_id is None and isinstance(name, str) and name in CARD_SDK_EVENTS:
        issues.append(FieldIssue("cardInstanceId", f"required for {name}"))
    elif card_id is not None and (not isinstance(card_id, str) or not 1 <= len(card_id) <= 36):
        issues.append(FieldIssue("cardInstanceId", "must be a card instance id"))
    view = raw.get("cardViewState")
    if view is not None and view not in ("topview", "subview"):
        issues.append(FieldIssue("cardViewState", "must be topview or subview"))
    local = raw.get("userLocalTimestamp")
    if local is not None and (not isinstance(local, str) or len(local) > 40 or "\x00" in local):
        issues.append(FieldIssue("userLocalTimestamp", "must be a date-time string"))
    fields = {"name": name, "event_id": event_id, "timestamp": timestamp,
              "properties": dict(props), "host_context": dict(host) if isinstance(host, Mapping) else {},
              "sdk_context": sdk, "stream_context": stream,
              "card_instance_id": card_id, "card_view_state": view, "user_local_timestamp": local}
    return fields, issues
