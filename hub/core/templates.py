"""Durations and ``{{placeholder}}`` templates: the text machinery flow definitions share.

A placeholder names a dotted path into the *context* a flow instance runs with::

    {"variables": {...},
     "customer": {"userId": ..., "fields": {...}, "tags": [...]},
     "steps": {stepId: {"values": {...}, "response": {"status", "body", "headers"}, "event": ...}},
     "invocation": {"id": ..., "metadata": {...}, "source": ...}}

``{{variables.amount}}`` inside a longer string renders as text; a string that is exactly one
placeholder keeps the referenced value's type, so ``"{{variables.limits}}"`` can stand for an
object in an HTTP body. A missing value is ``""`` inside text and ``None`` on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

# A path segment may be a list index (digits) as well as a key: {{steps.ask.values.items.0}}.
SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
PATH = re.compile(rf"{SEGMENT}(?:\.{SEGMENT})*")
PLACEHOLDER = re.compile(rf"\{{\{{\s*({SEGMENT}(?:\.{SEGMENT})*)\s*\}}\}}")
# Anything between double braces, to report the ones PLACEHOLDER does not accept.
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

_NUMBER = r"\d{1,12}(?:[.,]\d{1,9})?"
_DURATION = re.compile(
    rf"P(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_MAX_SECONDS = Decimal(timedelta.max.days) * 86400
# The same grammar for JSON Schema (ECMA-262 regex: no named groups, upper case only).
DURATION_PATTERN = (rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
                    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?")
DURATION_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{DURATION_PATTERN}$",
                                   "description": "ISO 8601 duration, e.g. PT15M, P1D, P1DT2H30M"}


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (``PT15M``, ``P1D``, ``P1DT2H30M``, ``PT0.5S``, ``P2W``) as a timedelta.

    Years and months are refused: they have no fixed length. Raises ValueError with a reason.
    """
    if not isinstance(text, str):
        raise ValueError("must be an ISO 8601 duration string such as PT15M or P1D")
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        date_part = text.strip().upper().split("T")[0]
        if date_part.startswith("P") and re.search(r"\d[YM]", date_part):
            raise ValueError("years and months have no fixed length: use days or weeks (P30D, P2W)")
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT15M, P1D or P1DT2H30M")
    parts = {unit: value for unit, value in match.groupdict().items() if value is not None}
    if not parts or ("T" in text.upper() and not {"hours", "minutes", "seconds"} & parts.keys()):
        raise ValueError(f"{text!r} names no amount of time (write PT0S for zero)")
    try:
        total = sum((Decimal(value.replace(",", ".")) * _UNIT_SECONDS[unit]
                     for unit, value in parts.items()), Decimal(0))
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain numbers
        raise ValueError(f"{text!r} is not an ISO 8601 duration") from None
    if total > _MAX_SECONDS:
        raise ValueError(f"{text!r} is too long")
    return timedelta(microseconds=int((total * 1_000_000).to_integral_value()))


def format_duration(value: float | timedelta) -> str:
    """The ISO 8601 form of a duration given in seconds or as a timedelta (``5400`` → ``PT1H30M``).

    ``parse_duration(format_duration(s)).total_seconds() == s`` for any non-negative number of
    seconds with microsecond precision.
    """
    delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if delta < timedelta(0):
        raise ValueError("a duration cannot be negative")
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    seconds, fraction = divmod(micros, 1_000_000)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if fraction:
        clock += f"{seconds}.{fraction:06d}".rstrip("0") + "S"
    elif seconds:
        clock += f"{seconds}S"
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


# --- placeholders ----------------------------------------------------------------------------


def lookup(context: Any, path: str) -> Any:
    """The value at a dotted ``path`` of ``context``; ``None`` when any part of it is missing."""
    value = context
    for segment in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes) and segment.isdigit():
            index = int(segment)
            value = value[index] if index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def to_text(value: Any) -> str:
    """How a value reads inside text: ``None`` is empty, booleans are ``true``/``false``, a whole
    float has no ``.0``, objects and lists are JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, ValueError, msgspec.EncodeError):
        return str(value)


def render_text(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with every placeholder replaced by its value as text (missing values are empty)."""
    if "{{" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: to_text(lookup(context, m.group(1))), text)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace placeholders in every string of a JSON value, recursively (object keys are kept).

    A string that is exactly one placeholder becomes the referenced value itself, with its type
    (``None`` when missing); placeholders inside longer strings render as text.
    """
    if isinstance(value, str):
        if "{{" not in value:
            return value
        whole = PLACEHOLDER.fullmatch(value)
        if whole is not None:
            return lookup(context, whole.group(1))
        return render_text(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value with its path (``a.b[2].c``); object keys are not visited."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def placeholders(value: Any) -> list[str]:
    """Every placeholder path in a JSON value, once each, in order of appearance."""
    found: dict[str, None] = {}
    for _, text in strings(value):
        if "{{" in text:
            for match in PLACEHOLDER.finditer(text):
                found.setdefault(match.group(1), None)
    return list(found)


def malformed_placeholders(text: str) -> list[str]:
    """The ``{{...}}`` parts of ``text`` that are not a valid placeholder (``{{ a b }}``, ``{{}}``)."""
    if "{{" not in text:
        return []
    return [match.group(0) for match in _ANY_PLACEHOLDER.finditer(text)
            if PATH.fullmatch(match.group(1).strip()) is None]
