"""The built-in step types of a flow definition: each one's fields, checks and normalised config.

:func:`parse_step_config` turns a step's JSON fields into its ``config`` (durations become
seconds: ``delay.duration`` → ``config["seconds"]``, ``timeout`` → ``config["timeoutSeconds"]``)
and :func:`config_to_json` turns it back. Steps of plugin types are checked against the JSON
Schema their plugin registered, with the small checker :func:`check_schema`.
References between steps (``next`` and the like) are checked by :mod:`hub.core.flows`, which
sees the whole definition; :func:`step_targets` tells it where a step can go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from hub.core.customers import FIELD_NAME, check_tag
from hub.core.customers import FieldIssue as Issue
from hub.core.expressions import compile_expression
from hub.core.templates import DURATION_SCHEMA, format_duration, parse_duration

PUSH_PLATFORMS = ("ios", "android", "web")
STEP_TYPES = ("card", "push", "delay", "wait_for", "branch", "http_request", "update_customer", "end",
              "parallel")
COMMON_KEYS = ("id", "type", "next")
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "card": ("template",),
    "push": ("title", "body", "data", "platforms", "priority", "allowFailure"),
    "delay": ("duration",),
    "wait_for": ("card", "events", "timeout", "onTimeout"),
    "branch": ("cases", "default"),
    "http_request": ("method", "url", "headers", "body", "timeout", "retries", "allowFailure"),
    "update_customer": ("fields", "addTags", "removeTags"),
    "end": (),
    "parallel": ("branches",),
}
# A branch goes to its cases' targets and an end stops everything: neither takes a `next`.
NO_NEXT = ("branch", "end")
# Steps that let time pass: a cycle through one of them cannot spin.
WAITING_STEPS = ("wait_for", "delay")
CARD_EVENTS = ("card-completed", "card-dismissed", "card-cancelled", "card-expired")
DEFAULT_WAIT_EVENTS = ("card-completed", "card-dismissed")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
HTTP_TIMEOUT_DEFAULT = 10.0
HTTP_TIMEOUT_MAX = 60.0
HTTP_RETRIES_MAX = 5
MAX_DURATION = 3650 * 86400.0
MAX_BRANCH_CASES = 50
STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
TEXT_MAX = 10_000


def _duration(value: Any, path: str, issues: list[Issue], maximum: float = MAX_DURATION) -> float:
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as exc:
        issues.append(Issue(path, str(exc)))
        return 0.0
    if seconds <= 0:
        issues.append(Issue(path, "must be longer than zero"))
    elif seconds > maximum:
        issues.append(Issue(path, f"must be at most {format_duration(maximum)}"))
    return seconds


def _text(value: Any, path: str, issues: list[Issue], *, required: bool = True) -> None:
    if not isinstance(value, str) or len(value) > TEXT_MAX or "\x00" in value or (required and not value):
        issues.append(Issue(path, f"must be a {'non-empty ' if required else ''}string "
                                  f"of at most {TEXT_MAX} characters"))


def _step_id(value: Any, path: str, issues: list[Issue]) -> None:
    if not isinstance(value, str) or not STEP_ID.fullmatch(value):
        issues.append(Issue(path, "must be a step id"))


def _url(value: Any, path: str, issues: list[Issue]) -> None:
    _text(value, path, issues)
    if isinstance(value, str) and value and not value.startswith("{{") \
            and not re.match(r"https?://[^\s/]", value, re.IGNORECASE):
        issues.append(Issue(path, "must be an http(s) URL or start with a placeholder"))


# --- one checker per built-in type: (fields, path) -> config, issues appended -----------------


def _card(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    if not isinstance(raw.get("template"), str) or not raw.get("template"):
        issues.append(Issue(f"{path}.template", "must name a card template"))
    return {"template": raw.get("template")}


def check_push_platforms(value: Any, path: str, extra_platforms: Sequence[str], *,
                         built_in: bool = True) -> list[Issue]:
    """Issues with a list of push platforms: Hub's own (unless ``built_in`` is false) and the
    ``extra_platforms`` plugins added (``hub_register_push_platforms``); repeats are harmless."""
    allowed = [*PUSH_PLATFORMS, *extra_platforms] if built_in else list(extra_platforms)
    if not isinstance(value, list) or not value:
        return [Issue(path, f"must be a non-empty list of push platforms ({', '.join(allowed) or 'none'})")]
    issues = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not built_in and item in PUSH_PLATFORMS:
            issues.append(Issue(where, f"{item!r} is a card platform: list it in the template's platforms"))
        elif not isinstance(item, str) or item not in allowed:
            known = ", ".join(allowed) if allowed else "none is installed"
            issues.append(Issue(where, f"unknown push platform {item!r} (known: {known}; a plugin adds "
                                       "one with hub_register_push_platforms)"))
    return issues


def _push(raw: Mapping[str, Any], path: str, issues: list[Issue],
          extra_platforms: Sequence[str] = ()) -> dict[str, Any]:
    _text(raw.get("title"), f"{path}.title", issues)
    _text(raw.get("body"), f"{path}.body", issues)
    data = raw.get("data", {})
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        # FCM carries only string values in `data`.
        issues.append(Issue(f"{path}.data", "must be an object of string values"))
        data = {}
    platforms = raw.get("platforms", list(PUSH_PLATFORMS))
    platform_issues = check_push_platforms(platforms, f"{path}.platforms", extra_platforms)
    if platform_issues:
        issues += platform_issues
        platforms = list(PUSH_PLATFORMS)
    priority = raw.get("priority", "high")
    if priority not in ("high", "normal"):
        issues.append(Issue(f"{path}.priority", "must be high or normal"))
    allow = raw.get("allowFailure", False)
    if not isinstance(allow, bool):
        issues.append(Issue(f"{path}.allowFailure", "must be true or false"))
    return {"title": raw.get("title"), "body": raw.get("body"), "data": dict(data),
            "platforms": list(dict.fromkeys(platforms)), "priority": priority, "allowFailure": allow is True}


def _delay(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    return {"seconds": _duration(raw.get("duration"), f"{path}.duration", issues)}


def _wait_for(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    _step_id(raw.get("card"), f"{path}.card", issues)
    events = raw.get("events", list(DEFAULT_WAIT_EVENTS))
    if not isinstance(events, list) or not events:
        issues.append(Issue(f"{path}.events", f"must be a non-empty list of {', '.join(CARD_EVENTS)}"))
        events = []
    for index, event in enumerate(events):
        if event not in CARD_EVENTS:
            issues.append(Issue(f"{path}.events[{index}]", f"must be one of {', '.join(CARD_EVENTS)}"))
        elif events.index(event) != index:
            issues.append(Issue(f"{path}.events[{index}]", f"duplicate event {event!r}"))
    timeout = raw.get("timeout")
    seconds = None if timeout is None else _duration(timeout, f"{path}.timeout", issues)
    on_timeout = raw.get("onTimeout")
    if on_timeout is not None:
        _step_id(on_timeout, f"{path}.onTimeout", issues)
    return {"card": raw.get("card"), "events": list(events), "timeoutSeconds": seconds,
            "onTimeout": on_timeout}


def _branch(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    cases = raw.get("cases", [])
    clean: list[dict[str, Any]] = []
    if not isinstance(cases, list) or len(cases) > MAX_BRANCH_CASES:
        issues.append(Issue(f"{path}.cases", f'must be a list of at most {MAX_BRANCH_CASES} '
                                             '{"when", "next"} cases'))
        cases = []
    for index, case in enumerate(cases):
        case_path = f"{path}.cases[{index}]"
        if not isinstance(case, Mapping):
            issues.append(Issue(case_path, 'must be {"when": expression, "next": step id}'))
            continue
        issues.extend(Issue(f"{case_path}.{key}", "unknown key (expected when, next)")
                      for key in case if key not in ("when", "next"))
        try:
            compile_expression(case.get("when"))  # type: ignore[arg-type]
        except ValueError as exc:
            issues.append(Issue(f"{case_path}.when", str(exc)))
        _step_id(case.get("next"), f"{case_path}.next", issues)
        clean.append({"when": case.get("when"), "next": case.get("next")})
    default = raw.get("default")
    if default is not None:
        _step_id(default, f"{path}.default", issues)
    if not clean and default is None:
        issues.append(Issue(f"{path}.cases", "a branch needs at least one case or a default"))
    return {"cases": clean, "default": default}


def _http_request(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    body = raw.get("body")
    method = raw.get("method", "GET" if body is None else "POST")
    if method not in HTTP_METHODS:
        issues.append(Issue(f"{path}.method", f"must be one of {', '.join(HTTP_METHODS)}"))
    _url(raw.get("url"), f"{path}.url", issues)
    headers = raw.get("headers", {})
    if not isinstance(headers, Mapping):
        issues.append(Issue(f"{path}.headers", "must be an object of string values"))
        headers = {}
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            issues.append(Issue(f"{path}.headers.{name}", "is not a valid header name"))
        elif not isinstance(value, str) or "\n" in value or "\r" in value:
            issues.append(Issue(f"{path}.headers.{name}", "must be a single-line string"))
    timeout = raw.get("timeout")
    seconds = HTTP_TIMEOUT_DEFAULT if timeout is None else _duration(
        timeout, f"{path}.timeout", issues, maximum=HTTP_TIMEOUT_MAX)
    retries = raw.get("retries", 0)
    if type(retries) is not int or not 0 <= retries <= HTTP_RETRIES_MAX:
        issues.append(Issue(f"{path}.retries", f"must be an integer from 0 to {HTTP_RETRIES_MAX}"))
    allow_failure = raw.get("allowFailure", False)
    if not isinstance(allow_failure, bool):
        issues.append(Issue(f"{path}.allowFailure", "must be true or false"))
    return {"method": method, "url": raw.get("url"), "headers": dict(headers), "body": body,
            "timeoutSeconds": seconds, "retries": retries, "allowFailure": allow_failure}


def _update_customer(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    fields = raw.get("fields", {})
    if not isinstance(fields, Mapping):
        issues.append(Issue(f"{path}.fields", "must be an object of field values"))
        fields = {}
    for name, value in fields.items():
        if not FIELD_NAME.fullmatch(name):
            issues.append(Issue(f"{path}.fields.{name}", "is not a valid field name"))
        elif value is not None and not isinstance(value, str | int | float | bool):
            issues.append(Issue(f"{path}.fields.{name}", "must be text, a number, true/false or null"))
        elif isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(f"{path}.fields.{name}", "must be a finite number"))
    tags: dict[str, list[Any]] = {}
    for key in ("addTags", "removeTags"):
        value = raw.get(key, [])
        if not isinstance(value, list):
            issues.append(Issue(f"{path}.{key}", "must be a list of tags"))
            value = []
        for index, tag in enumerate(value):
            if not (check_tag(tag) or (isinstance(tag, str) and "{{" in tag)):
                issues.append(Issue(f"{path}.{key}[{index}]", "must be a tag (1-100 characters, no "
                                                              "commas) or a placeholder"))
        tags[key] = list(value)
    if not fields and not tags["addTags"] and not tags["removeTags"]:
        issues.append(Issue(path, "an update_customer step needs fields, addTags or removeTags"))
    return {"fields": dict(fields), **tags}


def _parallel(raw: Mapping[str, Any], path: str, issues: list[Issue]) -> dict[str, Any]:
    branches = raw.get("branches")
    if not isinstance(branches, list) or not branches:
        issues.append(Issue(f"{path}.branches", "must be a non-empty list of step ids"))
        return {"branches": []}
    for index, branch in enumerate(branches):
        _step_id(branch, f"{path}.branches[{index}]", issues)
        if branches.index(branch) != index:
            issues.append(Issue(f"{path}.branches[{index}]", f"duplicate branch {branch!r}"))
    return {"branches": list(branches)}


_CHECKERS = {"card": _card, "push": _push, "delay": _delay, "wait_for": _wait_for, "branch": _branch,
             "http_request": _http_request, "update_customer": _update_customer,
             "end": lambda raw, path, issues: {}, "parallel": _parallel}


def parse_step_config(type_: str, raw: Mapping[str, Any], path: str,
                      schema: Mapping[str, Any] | None = None,
                      push_platforms: Sequence[str] = ()) -> tuple[dict[str, Any], list[Issue]]:
    """The normalised config of a step from its JSON object, and every issue with it.

    ``raw`` is the whole step (``id``, ``type`` and ``next`` are skipped); ``schema`` is the JSON
    Schema of a plugin type's config (ignored for built-in types); ``push_platforms`` are the
    push platforms plugins added, which a push step may name besides Hub's own.
    """
    fields = {key: value for key, value in raw.items() if key not in COMMON_KEYS}
    issues: list[Issue] = []
    if type_ in _CHECKERS:
        allowed = STEP_FIELDS[type_]
        issues += [Issue(f"{path}.{key}", f"unknown key for a {type_} step"
                                          + (f" (expected {', '.join(allowed)})" if allowed else ""))
                   for key in fields if key not in allowed]
        checker = partial(_push, extra_platforms=push_platforms) if type_ == "push" else _CHECKERS[type_]
        config = checker(fields, path, issues)
        return config, issues
    strict = dict(schema or {})
    strict.setdefault("type", "object")
    if "properties" in strict:
        strict.setdefault("additionalProperties", False)
    return fields, check_schema(fields, strict, path)


def config_to_json(type_: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON fields of a step from its config (the inverse of :func:`parse_step_config`)."""
    if type_ == "delay":
        return {"duration": format_duration(config["seconds"])}
    if type_ == "wait_for":
        fields = {"card": config["card"], "events": list(config["events"])}
        if config.get("timeoutSeconds") is not None:
            fields["timeout"] = format_duration(config["timeoutSeconds"])
        if config.get("onTimeout") is not None:
            fields["onTimeout"] = config["onTimeout"]
        return fields
    if type_ == "http_request":
        fields = {key: value for key, value in config.items() if key != "timeoutSeconds"}
        fields["timeout"] = format_duration(config["timeoutSeconds"])
        return fields
    if type_ == "branch":
        fields = {"cases": [dict(case) for case in config["cases"]]}
        if config.get("default") is not None:
            fields["default"] = config["default"]
        return fields
    return dict(config)


def step_targets(type_: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Where a step may continue besides its ``next``: ``[(field, step id)]``."""
    if type_ == "branch":
        targets = [(f"cases[{i}].next", case["next"]) for i, case in enumerate(config["cases"])]
        return targets + ([("default", config["default"])] if config.get("default") else [])
    if type_ == "wait_for" and config.get("onTimeout"):
        return [("onTimeout", config["onTimeout"])]
    if type_ == "parallel":
        return [(f"branches[{i}]", branch) for i, branch in enumerate(config["branches"])]
    return []


# --- a small JSON Schema checker for plugin step types ----------------------------------------

_JSON_TYPES: dict[str, Any] = {
    "object": Mapping, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return type(value) is int or (type(value) is float and value.is_integer())
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _JSON_TYPES.get(name)
    return expected is not None and isinstance(value, expected)


def check_schema(value: Any, schema: Mapping[str, Any], path: str) -> list[Issue]:
    """Issues with ``value`` against a JSON Schema: ``type``, ``enum``, ``const``, ``properties``,
    ``required``, ``additionalProperties``, ``items``, ``min/maxLength``, ``pattern``,
    ``minimum``/``maximum``, ``min/maxItems``. Other keywords are not checked."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            return [Issue(path, f"must be of type {' or '.join(names)}")]
    if "enum" in schema and value not in schema["enum"]:
        return [Issue(path, f"must be one of {', '.join(map(repr, schema['enum']))}")]
    if "const" in schema and value != schema["const"]:
        return [Issue(path, f"must be {schema['const']!r}")]
    issues: list[Issue] = []
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        issues += [Issue(f"{path}.{key}", "is required") for key in schema.get("required", [])
                   if key not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                issues += check_schema(item, properties[key], f"{path}.{key}")
            elif extra is False:
                issues.append(Issue(f"{path}.{key}", "unknown key"))
            elif isinstance(extra, Mapping):
                issues += check_schema(item, extra, f"{path}.{key}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            issues.append(Issue(path, f"must have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            issues.append(Issue(path, f"must have at most {schema['maxItems']} items"))
        if isinstance(schema.get("items"), Mapping):
            for index, item in enumerate(value):
                issues += check_schema(item, schema["items"], f"{path}[{index}]")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            issues.append(Issue(path, f"must be at least {schema['minLength']} characters"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            issues.append(Issue(path, f"must be at most {schema['maxLength']} characters"))
        if "pattern" in schema and not _search(schema["pattern"], value):
            issues.append(Issue(path, f"must match {schema['pattern']}"))
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            issues.append(Issue(path, f"must be at least {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            issues.append(Issue(path, f"must be at most {schema['maximum']}"))
    return issues


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a plugin's broken pattern is the plugin's bug, not the flow author's


# --- JSON Schema of the built-in steps (for flows.json_schema) --------------------------------

STEP_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{STEP_ID.pattern}$"}


def step_field_schemas(push_platforms: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """``{type: {"properties": ..., "required": [...]}}`` for the built-in steps' own fields
    (a push step's platforms: Hub's and ``push_platforms``, the ones plugins added)."""
    string = {"type": "string"}
    return {
        "card": {"properties": {"template": string}, "required": ["template"]},
        "push": {"properties": {"title": string, "body": string,
                                "data": {"type": "object", "additionalProperties": string},
                                "platforms": {"type": "array",
                                              "items": {"enum": [*PUSH_PLATFORMS, *push_platforms]},
                                              "minItems": 1, "default": list(PUSH_PLATFORMS)},
                                "priority": {"enum": ["high", "normal"], "default": "high"},
                                "allowFailure": {"type": "boolean", "default": False}},
                 "required": ["title", "body"]},
        "delay": {"properties": {"duration": DURATION_SCHEMA}, "required": ["duration"]},
        "wait_for": {"properties": {
            "card": STEP_ID_SCHEMA,
            "events": {"type": "array", "items": {"enum": list(CARD_EVENTS)}, "minItems": 1,
                       "default": list(DEFAULT_WAIT_EVENTS)},
            "timeout": DURATION_SCHEMA, "onTimeout": STEP_ID_SCHEMA}, "required": ["card"]},
        "branch": {"properties": {
            "cases": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["when", "next"],
                "properties": {"when": {"type": "string", "description": "expression"},
                               "next": STEP_ID_SCHEMA}}},
            "default": {"anyOf": [STEP_ID_SCHEMA, {"type": "null"}]}}, "required": []},
        "http_request": {"properties": {
            "method": {"enum": list(HTTP_METHODS)}, "url": string,
            "headers": {"type": "object", "additionalProperties": string}, "body": {},
            "timeout": {**DURATION_SCHEMA, "default": "PT10S"},
            "retries": {"type": "integer", "minimum": 0, "maximum": HTTP_RETRIES_MAX, "default": 0},
            "allowFailure": {"type": "boolean", "default": False}}, "required": ["url"]},
        "update_customer": {"properties": {
            "fields": {"type": "object",
                       "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
            "addTags": {"type": "array", "items": string},
            "removeTags": {"type": "array", "items": string}}, "required": []},
        "end": {"properties": {}, "required": []},
        "parallel": {"properties": {"branches": {"type": "array", "items": STEP_ID_SCHEMA, "minItems": 1}},
                     "required": ["branches"]},
    }
