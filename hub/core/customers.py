"""Customer profiles: field types, values, tags and preferences, validated without any I/O.

A profile has built-in text fields (name, email, phone, city, country, region) and the custom
fields an environment declares (text, number, date, boolean). Values are checked against the
declared type here; services persist what passes.

Every check returns ``FieldIssue``s named by a path relative to what it was given, so the caller
can prefix them (``users[3].fields.age``) and report every problem of a request at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import available_timezones

import msgspec

FIELD_TYPES = ("text", "number", "date", "boolean")
BUILTIN_FIELDS: dict[str, str] = {
    "name": "text", "email": "text", "phone": "text",
    "city": "text", "country": "text", "region": "text",
}
# Patterns are used with fullmatch: ``$`` alone would let a trailing newline through.
FIELD_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,63}")
TAG = re.compile(r"[^\s,][^,\x00-\x1f\x7f]{0,99}")
USER_ID_MAX = 255
TEXT_MAX = 2000
LABEL_MAX = 200
DESCRIPTION_MAX = 2000
MAX_TAGS = 100
MAX_WINDOWS_PER_DAY = 10
# Numbers are stored in JSON and compared as floats; integers beyond 64 bits would be silently
# rounded by SQLite's JSON functions and by most clients, so they are refused instead.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
# Names the tz database ships that are not places a customer can live in.
_NOT_TIMEZONES = frozenset({"localtime", "Factory", "posixrules", "posix", "right"})
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
    """Raised with every issue found, so one answer can name them all."""

    def __init__(self, issues: list[FieldIssue]):
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


def valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA timezone (``Europe/London``, ``UTC``)."""
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones()) - _NOT_TIMEZONES
    return name in _TIMEZONES


def check_user_id(user_id: Any, field: str = "userId") -> list[FieldIssue]:
    """Issues with a user id: a non-empty string of at most 255 characters, no control characters
    and no ``/`` (a user id is a path segment of ``/v1/{env}/users/{userId}``)."""
    if not isinstance(user_id, str) or not user_id.strip():
        return [FieldIssue(field, "must be a non-empty string")]
    if len(user_id) > USER_ID_MAX:
        return [FieldIssue(field, f"must be at most {USER_ID_MAX} characters")]
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in user_id):
        return [FieldIssue(field, "must not contain control characters")]
    if "/" in user_id:
        return [FieldIssue(field, "must not contain '/'")]
    return []


def _check_text(value: Any, field: str, limit: int) -> list[FieldIssue]:
    if not isinstance(value, str):
        return [FieldIssue(field, "must be a string")]
    if len(value) > limit:
        return [FieldIssue(field, f"must be at most {limit} characters")]
    if "\x00" in value:
        # PostgreSQL cannot store NUL in text or JSONB: refuse it here rather than fail later.
        return [FieldIssue(field, "must not contain the NUL character")]
    return []


def check_field_definition(name: Any, type_: Any, label: Any = "", description: Any = ""
                           ) -> list[FieldIssue]:
    """Issues with a custom field definition (name, type, label, description)."""
    issues = []
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        issues.append(FieldIssue("name", "must start with a letter and hold only letters, digits "
                                         "and '_' (at most 64)"))
    elif name in BUILTIN_FIELDS:
        issues.append(FieldIssue("name", f"{name!r} is a built-in field"))
    if type_ not in FIELD_TYPES:
        issues.append(FieldIssue("type", f"must be one of {', '.join(FIELD_TYPES)}"))
    issues += _check_text(label, "label", LABEL_MAX)
    issues += _check_text(description, "description", DESCRIPTION_MAX)
    return issues


def _normalize_date(value: str) -> str:
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date (2026-01-31) or date-time") from None
    if parsed.tzinfo is None:
        raise ValueError("a date-time must carry a timezone offset (Z or +hh:mm)")
    # One instant has one stored form, so equality filters find it whatever offset was sent.
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def normalize_value(type_: str, value: Any) -> Any:
    """The stored form of ``value`` for a field of ``type_``; raises ValueError with a reason."""
    if type_ == "text":
        issues = _check_text(value, "", TEXT_MAX)
        if issues:
            raise ValueError(issues[0].reason)
        return value
    if type_ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise ValueError("must fit in 64 bits")
        return value
    if type_ == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if type_ == "date":
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date or date-time string")
        return _normalize_date(value)
    raise ValueError(f"unknown field type {type_!r}")


def parse_filter_value(type_: str, raw: str) -> Any:
    """A query-string value (always text) read as a value of a field of ``type_``, for equality."""
    if type_ == "number":
        try:
            number = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if type_ == "boolean":
        if raw not in ("true", "false"):
            raise ValueError("must be true or false")
        return raw == "true"
    return normalize_value(type_, raw)


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


def check_tag(tag: Any) -> bool:
    """Whether ``tag`` is a valid tag: 1-100 characters, no commas or control characters."""
    return isinstance(tag, str) and TAG.fullmatch(tag) is not None


def check_tags(tags: Any, field: str = "tags") -> tuple[list[str], list[FieldIssue]]:
    """Validate a list of tags; duplicates are dropped, order kept."""
    if not isinstance(tags, list):
        return [], [FieldIssue(field, "must be a list of strings")]
    clean: list[str] = []
    issues: list[FieldIssue] = []
    for i, tag in enumerate(tags):
        if not check_tag(tag):
            issues.append(FieldIssue(f"{field}[{i}]", "must be 1-100 characters, no commas or "
                                                      "control characters, not starting with a space"))
        elif tag not in clean:
            clean.append(tag)
    if len(clean) > MAX_TAGS:
        issues.append(FieldIssue(field, f"at most {MAX_TAGS} tags"))
    return clean, issues


def merge_tags(current: Sequence[str], replace: Sequence[str] | None = None,
               add: Sequence[str] = (), remove: Sequence[str] = ()) -> list[str]:
    """``replace`` (if given) becomes the tags, then ``add`` is appended, then ``remove`` goes."""
    tags = list(replace if replace is not None else current)
    tags += [t for t in add if t not in tags]
    removed = set(remove)
    return [t for t in tags if t not in removed]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def check_preferences(prefs: Any, field: str = "preferences") -> tuple[dict[str, Any], list[FieldIssue]]:
    """Validate a partial preferences object: timezone, notificationsEnabled, notificationWindows.

    ``null`` resets a preference to its default. ``notificationWindows`` maps a weekday to a list
    of ``{"from": "HH:MM", "to": "HH:MM"}`` windows in the customer's own timezone (``to`` after
    ``from``; ``24:00`` ends a day). A weekday with an empty list means no notifications that
    day; a missing weekday means any time. Windows merge by weekday (see :func:`merge_preferences`).
    """
    if not isinstance(prefs, Mapping):
        return {}, [FieldIssue(field, "must be an object")]
    clean: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for key, value in prefs.items():
        path = f"{field}.{key}"
        if key not in DEFAULT_PREFERENCES:
            issues.append(FieldIssue(path, "unknown preference (timezone, notificationsEnabled, "
                                           "notificationWindows)"))
        elif value is None:
            clean[key] = None
        elif key == "timezone":
            if not isinstance(value, str) or not valid_timezone(value):
                issues.append(FieldIssue(path, "must be an IANA timezone such as Europe/London"))
            else:
                clean[key] = value
        elif key == "notificationsEnabled":
            if not isinstance(value, bool):
                issues.append(FieldIssue(path, "must be true or false"))
            else:
                clean[key] = value
        else:
            windows, window_issues = _check_windows(value, path)
            issues.extend(window_issues)
            clean[key] = windows
    return clean, issues


def _check_day(windows: Any, day_path: str) -> tuple[list[dict[str, str]], list[FieldIssue]]:
    if not isinstance(windows, list) or len(windows) > MAX_WINDOWS_PER_DAY:
        return [], [FieldIssue(day_path, f"must be a list of at most {MAX_WINDOWS_PER_DAY} windows "
                                         "(or null to allow any time)")]
    clean: list[dict[str, str]] = []
    issues: list[FieldIssue] = []
    for i, window in enumerate(windows):
        w_path = f"{day_path}[{i}]"
        if (not isinstance(window, Mapping) or set(window) != {"from", "to"}
                or not all(isinstance(window[k], str) and _HHMM.fullmatch(window[k])
                           for k in ("from", "to"))):
            issues.append(FieldIssue(w_path, 'must be {"from": "HH:MM", "to": "HH:MM"}'))
            continue
        if _minutes(window["to"]) <= _minutes(window["from"]):
            issues.append(FieldIssue(w_path, "'to' must be after 'from'"))
            continue
        clean.append({"from": window["from"], "to": window["to"]})
    return sorted(clean, key=lambda w: w["from"]), issues


def _check_windows(value: Any, path: str) -> tuple[dict[str, Any], list[FieldIssue]]:
    if not isinstance(value, Mapping):
        return {}, [FieldIssue(path, "must be an object keyed by weekday")]
    clean: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for day, windows in value.items():
        day_path = f"{path}.{day}"
        if day not in WEEKDAYS:
            issues.append(FieldIssue(day_path, f"must be one of {', '.join(WEEKDAYS)}"))
        elif windows is None:
            clean[day] = None
        else:
            clean[day], more = _check_day(windows, day_path)
            issues += more
    return clean, issues


DEFAULT_PREFERENCES: dict[str, Any] = {
    "timezone": None,
    "notificationsEnabled": True,
    "notificationWindows": {},
}


def merge_preferences(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply checked preference changes: ``None`` resets to the default; windows merge by weekday.

    Merging windows by weekday lets a client change Monday without resending the week; a weekday
    set to ``None`` goes back to "any time".
    """
    merged = {**DEFAULT_PREFERENCES, **current}
    for key, value in changes.items():
        if value is None:
            merged[key] = DEFAULT_PREFERENCES[key]
        elif key == "notificationWindows":
            days = {**merged.get(key, {}), **value}
            merged[key] = {d: days[d] for d in WEEKDAYS if days.get(d) is not None}
        else:
            merged[key] = value
    return merged


def merge_fields(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply checked field changes: a value sets the field, ``None`` removes it."""
    merged = dict(current)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


@dataclass(frozen=True)
class Profile:
    """The stored, changeable part of a customer."""

    fields: dict[str, Any]
    tags: list[str]
    preferences: dict[str, Any]
    is_test_user: bool


NEW_PROFILE = Profile({}, [], dict(DEFAULT_PREFERENCES), False)


def apply_upsert(current: Profile | None, item: Mapping[str, Any]) -> tuple[Profile, dict[str, Any]]:
    """Merge a checked upsert item into ``current`` (``None``: a new customer).

    Returns the new profile and the ``changes`` announced through ``hub_customer_changed``:
    ``{"created", "deleted", "erased", "fields": [names], "tags", "preferences", "isTestUser"}``.
    Nothing changed when no list is non-empty and no flag is true (see :func:`has_changes`).
    """
    base = current or NEW_PROFILE
    fields = merge_fields(base.fields, item.get("fields", {}))
    preferences = merge_preferences(base.preferences, item.get("preferences", {}))
    tags = merge_tags(base.tags, item.get("tags"), item.get("addTags", ()), item.get("removeTags", ()))
    is_test = item.get("isTestUser", base.is_test_user)
    profile = Profile(fields, tags, preferences, is_test)
    if current is None:
        changes = {"created": True, "fields": sorted(fields), "tags": True, "preferences": True,
                   "isTestUser": True}
    else:
        changes = {
            "created": False,
            "fields": sorted(k for k in set(fields) | set(current.fields)
                             if fields.get(k) != current.fields.get(k)),
            "tags": tags != current.tags,
            "preferences": preferences != merge_preferences(current.preferences, {}),
            "isTestUser": is_test != current.is_test_user,
        }
    return profile, {**changes, "deleted": False, "erased": False}


def has_changes(changes: Mapping[str, Any]) -> bool:
    """Whether an ``apply_upsert`` result changed anything."""
    return any(bool(value) for value in changes.values())
