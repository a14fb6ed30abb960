"""Flow variables: their definitions and the values an invocation gives them.

A flow declares variables (name, type, default, required, overridable); a trigger gives values
in its payload. :func:`resolve_variables` checks the given values against the definitions once,
at the start of an instance, and returns every variable's value (defaults filled in, ``None``
for an optional variable nobody set).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from hub.core.customers import FieldIssue, normalize_value

VARIABLE_TYPES = ("string", "number", "boolean", "date", "object")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
VARIABLE_KEYS = ("name", "type", "required", "default", "overridable", "description")
STRING_MAX = 10_000
DESCRIPTION_MAX = 2000


class VariableDef(msgspec.Struct, kw_only=True, frozen=True):
    """One variable of a flow definition."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    overridable: bool = True
    description: str = ""


def check_value(type_: str, value: Any) -> Any:
    """The normalised form of ``value`` for a variable of ``type_``; raises ValueError with a reason.

    Dates become ISO strings (``2026-01-31``, or a UTC date-time ending in ``Z``); an ``object``
    is any JSON object or array.
    """
    if type_ == "string":
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > STRING_MAX:
            raise ValueError(f"must be at most {STRING_MAX} characters")
        if "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value
    if type_ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return normalize_value("number", value)
    if type_ == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if type_ == "date":
        return normalize_value("date", value)
    if type_ == "object":
        if not isinstance(value, dict | list):
            raise ValueError("must be a JSON object or array")
        try:
            # Through JSON and back: what is resolved is exactly what will be stored.
            return msgspec.json.decode(msgspec.json.encode(value))
        except (TypeError, ValueError, msgspec.EncodeError, msgspec.DecodeError):
            raise ValueError("must be plain JSON") from None
    raise ValueError(f"unknown variable type {type_!r}")


def coerce_string(type_: str, text: str) -> Any:
    """A value that arrived as text (SFMC, Marketo, CSV uploads) read as ``type_``, then checked."""
    if type_ == "number":
        try:
            number = float(text.strip())
        except ValueError:
            raise ValueError("must be a number") from None
        return check_value(type_, int(number) if number.is_integer() and "." not in text else number)
    if type_ == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError("must be true or false")
    if type_ == "object":
        try:
            return check_value(type_, msgspec.json.decode(text))
        except msgspec.DecodeError:
            raise ValueError("must be a JSON object or array") from None
    return check_value(type_, text)


def resolve_variables(definitions: Sequence[VariableDef], given: Mapping[str, Any], *,
                      coerce_strings: bool = False) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Every variable's value for one instance, and the issues with ``given``.

    A given ``None`` counts as not given. A variable that is not overridable takes its default
    and refuses a given value; a required one without a default must be given; unknown names are
    refused. With ``coerce_strings``, string values are read as the declared type first (for
    sources that only send text). Issue paths are ``variables.<name>``.
    """
    values: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    if not isinstance(given, Mapping):
        return {}, [FieldIssue("variables", "must be an object")]
    known = {definition.name for definition in definitions}
    for name in given:
        if name not in known:
            issues.append(FieldIssue(f"variables.{name}", "is not a variable of this flow"))
    for definition in definitions:
        path = f"variables.{definition.name}"
        value = given.get(definition.name)
        if value is not None and not definition.overridable:
            issues.append(FieldIssue(path, "is not overridable"))
            value = None
        if value is None:
            if definition.default is None and definition.required and definition.overridable:
                issues.append(FieldIssue(path, f"is required ({definition.type})"))
            values[definition.name] = definition.default
            continue
        try:
            if coerce_strings and isinstance(value, str) and definition.type != "string":
                values[definition.name] = coerce_string(definition.type, value)
            else:
                values[definition.name] = check_value(definition.type, value)
        except ValueError as exc:
            issues.append(FieldIssue(path, f"{exc} (variable type {definition.type})"))
    return values, issues


def parse_variable(raw: Any, path: str) -> tuple[VariableDef | None, list[FieldIssue]]:
    """A variable definition from its JSON form, or the issues with it (paths under ``path``)."""
    if not isinstance(raw, Mapping):
        return None, [FieldIssue(path, "must be an object")]
    issues = [FieldIssue(f"{path}.{key}", f"unknown key (expected {', '.join(VARIABLE_KEYS)})")
              for key in raw if key not in VARIABLE_KEYS]
    name, type_ = raw.get("name"), raw.get("type")
    if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
        issues.append(FieldIssue(f"{path}.name", "must start with a letter or '_' and hold only "
                                                 "letters, digits and '_' (at most 64)"))
    if type_ not in VARIABLE_TYPES:
        issues.append(FieldIssue(f"{path}.type", f"must be one of {', '.join(VARIABLE_TYPES)}"))
    flags = {}
    for key, fallback in (("required", False), ("overridable", True)):
        flags[key] = raw.get(key, fallback)
        if not isinstance(flags[key], bool):
            issues.append(FieldIssue(f"{path}.{key}", "must be true or false"))
    description = raw.get("description", "")
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        issues.append(FieldIssue(f"{path}.description",
                                 f"must be a string of at most {DESCRIPTION_MAX} characters"))
    default = raw.get("default")
    if default is not None and type_ in VARIABLE_TYPES:
        try:
            default = check_value(str(type_), default)
        except ValueError as exc:
            issues.append(FieldIssue(f"{path}.default", f"{exc} (variable type {type_})"))
    if default is None and flags["overridable"] is False and flags["required"] is True:
        issues.append(FieldIssue(f"{path}.default", "a required variable that is not overridable "
                                                    "needs a default"))
    if issues:
        return None, issues
    return VariableDef(name=str(name), type=str(type_), required=bool(flags["required"]),
                       default=default, overridable=bool(flags["overridable"]),
                       description=str(description)), []


def variable_to_json(variable: VariableDef) -> dict[str, Any]:
    """The JSON form of a variable definition."""
    return {"name": variable.name, "type": variable.type, "required": variable.required,
            "default": variable.default, "overridable": variable.overridable,
            "description": variable.description}


def variable_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a variable definition's JSON form."""
    return {
        "type": "object", "additionalProperties": False, "required": ["name", "type"],
        "properties": {
            "name": {"type": "string", "pattern": f"^{VARIABLE_NAME.pattern}$"},
            "type": {"enum": list(VARIABLE_TYPES)},
            "required": {"type": "boolean", "default": False},
            "default": {"description": "a value of the variable's type, or null"},
            "overridable": {"type": "boolean", "default": True},
            "description": {"type": "string", "maxLength": DESCRIPTION_MAX, "default": ""},
        },
    }
