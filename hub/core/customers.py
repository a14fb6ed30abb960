"""Customer profiles: field types, values, tags and preferences, validated without any I/O.

A profile has built-in text fields (name, email, phone, city, country, region) and the custom
fields an environment declares (text, number, date, boolean). Values are checked against the
declared type here; services persist what passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import available_timezones

import msgspec

FIELD_TYPES = ("text", "number", "date", "boolean")
BUILTIN_FIELDS: dict[str, str] = {
    "name": "text", "email": "text", "phone": "text",
    "city": "text", "country": "text", "region": "text",
}
FIELD_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
TAG = re.compile(r"^[^\s,][^,]{0,99}$")
USER_ID_MAX = 255
TEXT_MAX = 2000
MAX_TAGS = 100
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_TIMEZONES: frozenset[str] | None = None


class Customer(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=False):
    """A customer profile as the API shows it."""

    user_id: str
    fields: dict[str, Any]
    tags: list[str]
    preferences: dict[str, Any]
    is_test_user: bool
    created_at: datetime
    updated_at: datetime
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one part of an input, named by a dotted path."""

    field: str
    reason: str


class ProfileError(ValueError):
    def __init__(self, issues: list[FieldIssue]):
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


def valid_timezone(name: str) -> bool:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones())
    return name in _TIMEZONES


def check_user_id(user_id: Any, field: str = "userId") -> list[FieldIssue]:
    if not isinstance(user_id, str) or not user_id.strip():
        return [FieldIssue(field, "must be a non-empty string")]
    if len(user_id) > USER_ID_MAX:
        return [FieldIssue(field, f"must be at most {USER_ID_MAX} characters")]
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in user_id):
        return [FieldIssue(field, "must not contain control characters")]
    return []


def check_field_definition(name: Any, type_: Any) -> list[FieldIssue]:
    issues = []
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        issues.append(FieldIssue("name", "must start with a letter and hold only letters, digits "
                                         "and '_' (at most 64)"))
    elif name in BUILTIN_FIELDS:
        issues.append(FieldIssue("name", f"{name!r} is a built-in field"))
    if type_ not in FIELD_TYPES:
        issues.append(FieldIssue("type", f"must be one of {', '.join(FIELD_TYPES)}"))
    return issues


def normalize_value(type_: str, value: Any) -> Any:
    """The stored form of ``value`` for a field of ``type_``; raises ValueError with a reason."""
    if type_ == "text":
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > TEXT_MAX:
            raise ValueError(f"must be at most {TEXT_MAX} characters")
        return value
    if type_ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return value
    if type_ == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if type_ == "date":
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date or date-time string")
        try:
            if len(value) == 10:
                return date.fromisoformat(value).isoformat()
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 date (2026-01-31) or date-time") from None
        if parsed.tzinfo is None:
            raise ValueError("a date-time must carry a timezone offset (Z or +hh:mm)")
        return parsed.isoformat()
    raise ValueError(f"unknown field type {type_!r}")


def check_fields(values: Any, definitions: Mapping[str, str], prefix: str = "fields"
                 ) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Normalise profile field values; ``None`` removes a field. Undeclared fields are errors."""
    if not isinstance(values, Mapping):
        return {}, [FieldIssue(prefix, "must be an object")]
    clean: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for name, value in values.items():
        path = f"{prefix}.{name}"
        type_ = BUILTIN_FIELDS.get(name) or definitions.get(name)
        if type_ is None:
            issues.append(FieldIssue(path, "is not a defined field (POST /v1/{env}/fields first)"))
            continue
        if value is None:
            clean[name] = None
            continue
        try:
            clean[name] = normalize_value(type_, value)
        except ValueError as exc:
            issues.append(FieldIssue(path, f"{exc} (field type {type_})"))
    return clean, issues


def check_tags(tags: Any, field: str = "tags") -> tuple[list[str], list[FieldIssue]]:
    if not isinstance(tags, list):
        return [], [FieldIssue(field, "must be a list of strings")]
    clean: list[str] = []
    issues: list[FieldIssue] = []
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not TAG.match(tag):
            issues.append(FieldIssue(f"{field}[{i}]", "must be 1-100 characters, no commas, "
                                                      "not starting with a space"))
        elif tag not in clean:
            clean.append(tag)
    if len(clean) > MAX_TAGS:
        issues.append(FieldIssue(field, f"at most {MAX_TAGS} tags"))
    return clean, issues


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def check_preferences(prefs: Any, field: str = "preferences") -> tuple[dict[str, Any], list[FieldIssue]]:
    """Validate a partial preferences object: timezone, notificationsEnabled, notificationWindows.

    ``notificationWindows`` maps a weekday to a list of ``{"from": "HH:MM", "to": "HH:MM"}``
    windows in the customer's own timezone (``to`` after ``from``; ``24:00`` ends a day). A
    weekday with an empty list means no notifications that day; a missing weekday means any time.
    """
    if not isinstance(prefs, Mapping):
        return {}, [FieldIssue(field, "must be an object")]
    clean: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for key, value in prefs.items():
        path = f"{field}.{key}"
        if key == "timezone":
            if value is not None and (not isinstance(value, str) or not valid_timezone(value)):
                issues.append(FieldIssue(path, "must be an IANA timezone such as Europe/London"))
            else:
                clean[key] = value
        elif key == "notificationsEnabled":
            if not isinstance(value, bool):
                issues.append(FieldIssue(path, "must be true or false"))
            else:
                clean[key] = value
        elif key == "notificationWindows":
            windows, window_issues = _check_windows(value, path)
            issues.extend(window_issues)
            clean[key] = windows
        else:
            issues.append(FieldIssue(path, "unknown preference (timezone, notificationsEnabled, "
                                           "notificationWindows)"))
    return clean, issues


def _check_windows(value: Any, path: str) -> tuple[dict[str, list[dict[str, str]]], list[FieldIssue]]:
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [FieldIssue(path, "must be an object keyed by weekday")]
    clean: dict[str, list[dict[str, str]]] = {}
    issues: list[FieldIssue] = []
    for day, windows in value.items():
        day_path = f"{path}.{day}"
        if day not in WEEKDAYS:
            issues.append(FieldIssue(day_path, f"must be one of {', '.join(WEEKDAYS)}"))
            continue
        if not isinstance(windows, list) or len(windows) > 10:
            issues.append(FieldIssue(day_path, "must be a list of at most 10 windows"))
            continue
        day_windows = []
        for i, window in enumerate(windows):
            w_path = f"{day_path}[{i}]"
            if (not isinstance(window, Mapping) or set(window) != {"from", "to"}
                    or not all(isinstance(window[k], str) and _HHMM.match(window[k])
                               for k in ("from", "to"))):
                issues.append(FieldIssue(w_path, 'must be {"from": "HH:MM", "to": "HH:MM"}'))
                continue
            if _minutes(window["to"]) <= _minutes(window["from"]):
                issues.append(FieldIssue(w_path, "'to' must be after 'from'"))
                continue
            day_windows.append({"from": window["from"], "to": window["to"]})
        clean[day] = sorted(day_windows, key=lambda w: w["from"])
    return clean, issues


DEFAULT_PREFERENCES: dict[str, Any] = {
    "timezone": None,
    "notificationsEnabled": True,
    "notificationWindows": {},
}


def merge_preferences(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**DEFAULT_PREFERENCES, **current}
    merged.update(changes)
    return merged


def merge_fields(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged
