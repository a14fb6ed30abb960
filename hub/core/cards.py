"""Card templates: their elements, how they render for one customer, and what a submit may carry.

A template is a list of *elements* (headline, text, image, button, input) plus delivery settings
(priority, expiry, embargo, streams, platforms) and an optional push notification. Every string
in the elements and the push may hold ``{{placeholders}}``; :func:`render_card` fills them in
when a flow sends the card. :func:`validate_submission` checks the values a customer submits
against the card's rendered input elements.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import msgspec

from hub.core.customers import FieldIssue
from hub.core.flow_steps import check_push_platforms
from hub.core.templates import DURATION_SCHEMA, format_duration, parse_duration, render, render_text

ELEMENT_TYPES = ("headline", "text", "image", "button", "input")
INPUT_TYPES = ("text", "number", "date", "checkbox", "dropdown", "toggle")
BUTTON_ACTIONS = ("submit", "dismiss", "snooze", "link", "custom")
PLATFORMS = ("web", "ios", "android")
TEMPLATE_KEYS = ("id", "name", "priority", "expiresIn", "embargoFor", "streams", "platforms",
                 "elements", "push")
PUSH_KEYS = ("title", "body", "extraPlatforms")
TEMPLATE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
INPUT_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
STREAM_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# Which keys each element takes, and which of them are required.
ELEMENT_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "headline": ({"type", "text"}, {"text"}),
    "text": ({"type", "text"}, {"text"}),
    "image": ({"type", "url", "alt"}, {"url"}),
    "button": ({"type", "label", "action", "url", "value", "snoozeFor"}, {"label", "action"}),
    "input": ({"type", "inputType", "id", "label", "required", "placeholder", "options", "validation"},
              {"inputType", "id", "label"}),
}
VALIDATION_KEYS: dict[str, set[str]] = {
    "text": {"minLength", "maxLength", "pattern"}, "number": {"min", "max", "integer"},
    "date": {"min", "max"}, "checkbox": set(), "dropdown": set(), "toggle": set(),
}
TEXT_MAX = 10_000
MAX_ELEMENTS = 100
MAX_OPTIONS = 100
# Strings in a card that are shown to people: they always render as text.
_CARD_TEXT = ("text", "url", "alt", "label", "placeholder")
# The element keys whose placeholders are filled in (ids, types and validation rules are not).
RENDERED_KEYS = (*_CARD_TEXT, "options", "value")


class CardTemplate(msgspec.Struct, kw_only=True, frozen=True):
    """A card template of a flow definition; durations are in seconds."""

    id: str
    name: str
    priority: int = 5
    expires_in: float | None = None
    embargo_for: float | None = None
    streams: list[str] = msgspec.field(default_factory=lambda: ["default"])
    platforms: list[str] = msgspec.field(default_factory=lambda: list(PLATFORMS))
    elements: list[dict[str, Any]] = msgspec.field(default_factory=list)
    push: dict[str, Any] | None = None

    def inputs(self) -> list[dict[str, Any]]:
        """The input elements, in order."""
        return [element for element in self.elements if element.get("type") == "input"]


# --- parsing ---------------------------------------------------------------------------------


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= TEXT_MAX and "\x00" not in value


def _unknown_keys(raw: Mapping[str, Any], allowed: Sequence[str] | set[str], path: str) -> list[FieldIssue]:
    names = ", ".join(sorted(allowed))
    return [FieldIssue(f"{path}.{key}", f"unknown key (expected one of {names})")
            for key in raw if key not in allowed]


def _duration_seconds(value: Any, path: str, issues: list[FieldIssue]) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as exc:
        issues.append(FieldIssue(path, str(exc)))
        return None
    if seconds <= 0:
        issues.append(FieldIssue(path, "must be longer than zero"))
    elif seconds > 3650 * 86400:
        issues.append(FieldIssue(path, "must be at most ten years (P3650D)"))
    return seconds


def _check_string_list(value: Any, path: str, allowed: Sequence[str] | None = None,
                       pattern: re.Pattern[str] | None = None) -> list[FieldIssue]:
    if not isinstance(value, list) or not value:
        return [FieldIssue(path, "must be a non-empty list of strings")]
    issues = []
    for index, item in enumerate(value):
        if allowed is not None and item not in allowed:
            issues.append(FieldIssue(f"{path}[{index}]", f"must be one of {', '.join(allowed)}"))
        elif pattern is not None and not (isinstance(item, str) and pattern.fullmatch(item)):
            issues.append(FieldIssue(f"{path}[{index}]", "must be 1-64 letters, digits, '_', '.', '-'"))
        elif value.index(item) != index:
            issues.append(FieldIssue(f"{path}[{index}]", f"duplicate {item!r}"))
    return issues


def parse_card_template(raw: Any, path: str, push_platforms: Sequence[str] = ()
                        ) -> tuple[CardTemplate | None, list[FieldIssue]]:
    """A card template from its JSON form, or every issue with it (paths under ``path``).

    ``push_platforms`` are the push platforms plugins added: the template's push may name them in
    ``extraPlatforms`` (the card's push goes to its own platforms and to those).
    """
    if not isinstance(raw, Mapping):
        return None, [FieldIssue(path, "must be an object")]
    issues = _unknown_keys(raw, TEMPLATE_KEYS, path)
    template_id, name = raw.get("id"), raw.get("name")
    if not isinstance(template_id, str) or not TEMPLATE_ID.fullmatch(template_id):
        issues.append(FieldIssue(f"{path}.id", "must be 1-64 letters, digits, '_', '.', '-'"))
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        issues.append(FieldIssue(f"{path}.name", "must be a non-empty string of at most 200 characters"))
    priority = raw.get("priority", 5)
    if type(priority) is not int or not 1 <= priority <= 10:
        issues.append(FieldIssue(f"{path}.priority", "must be an integer from 1 to 10"))
    expires_in = _duration_seconds(raw.get("expiresIn"), f"{path}.expiresIn", issues)
    embargo_for = _duration_seconds(raw.get("embargoFor"), f"{path}.embargoFor", issues)
    streams = raw.get("streams", ["default"])
    issues += _check_string_list(streams, f"{path}.streams", pattern=STREAM_ID)
    platforms = raw.get("platforms", list(PLATFORMS))
    issues += _check_string_list(platforms, f"{path}.platforms", allowed=PLATFORMS)
    elements, element_issues = check_elements(raw.get("elements", []), f"{path}.elements")
    issues += element_issues
    push = raw.get("push")
    if push is not None:
        if not isinstance(push, Mapping):
            issues.append(FieldIssue(f"{path}.push", 'must be an object {"title", "body"}'))
        else:
            issues += _unknown_keys(push, PUSH_KEYS, f"{path}.push")
            for key in ("title", "body"):
                if not _is_text(push.get(key)) or not push.get(key):
                    issues.append(FieldIssue(f"{path}.push.{key}", "must be a non-empty string"))
            if "extraPlatforms" in push:
                issues += check_push_platforms(push["extraPlatforms"], f"{path}.push.extraPlatforms",
                                               push_platforms, built_in=False)
    if issues:
        return None, issues
    return CardTemplate(
        id=str(template_id), name=str(name), priority=int(priority), expires_in=expires_in,
        embargo_for=embargo_for, streams=list(streams), platforms=list(platforms), elements=elements,
        push=_push_template(push) if push is not None else None,
    ), []


def _push_template(push: Mapping[str, Any]) -> dict[str, Any]:
    clean = {"title": push["title"], "body": push["body"]}
    if "extraPlatforms" in push:
        clean["extraPlatforms"] = list(dict.fromkeys(push["extraPlatforms"]))
    return clean


def template_to_json(template: CardTemplate) -> dict[str, Any]:
    """The JSON form of a card template (durations as ISO 8601 text)."""
    return {
        "id": template.id, "name": template.name, "priority": template.priority,
        "expiresIn": None if template.expires_in is None else format_duration(template.expires_in),
        "embargoFor": None if template.embargo_for is None else format_duration(template.embargo_for),
        "streams": list(template.streams), "platforms": list(template.platforms),
        "elements": [dict(element) for element in template.elements],
        "push": dict(template.push) if template.push is not None else None,
    }


def check_elements(raw: Any, path: str) -> tuple[list[dict[str, Any]], list[FieldIssue]]:
    """Validate and normalise a template's elements (defaults filled in); input ids are unique."""
    if not isinstance(raw, list):
        return [], [FieldIssue(path, "must be a list of elements")]
    if len(raw) > MAX_ELEMENTS:
        return [], [FieldIssue(path, f"at most {MAX_ELEMENTS} elements")]
    clean: list[dict[str, Any]] = []
    issues: list[FieldIssue] = []
    seen: set[str] = set()
    for index, element in enumerate(raw):
        item_path = f"{path}[{index}]"
        normalised, element_issues = _check_element(element, item_path)
        issues += element_issues
        if normalised is None:
            continue
        if normalised["type"] == "input":
            if normalised["id"] in seen:
                issues.append(FieldIssue(f"{item_path}.id", f"duplicate input id {normalised['id']!r}"))
            seen.add(normalised["id"])
        clean.append(normalised)
    return clean, issues


def _check_element(raw: Any, path: str) -> tuple[dict[str, Any] | None, list[FieldIssue]]:
    if not isinstance(raw, Mapping) or raw.get("type") not in ELEMENT_TYPES:
        return None, [FieldIssue(f"{path}.type" if isinstance(raw, Mapping) else path,
                                 f"an element needs a type: one of {', '.join(ELEMENT_TYPES)}")]
    type_ = raw["type"]
    allowed, required = ELEMENT_KEYS[type_]
    issues = _unknown_keys(raw, allowed, path)
    issues += [FieldIssue(f"{path}.{key}", "is required") for key in sorted(required) if key not in raw]
    for key in ("text", "url", "alt", "label", "placeholder"):
        if key in raw and not _is_text(raw[key]):
            issues.append(FieldIssue(f"{path}.{key}", f"must be a string of at most {TEXT_MAX} characters"))
    if type_ == "image":
        element = {"type": "image", "url": raw.get("url"), "alt": raw.get("alt", "")}
        if _is_text(raw.get("url")):
            issues += _check_url(raw["url"], f"{path}.url")
    elif type_ == "button":
        element, more = _check_button(raw, path)
        issues += more
    elif type_ == "input":
        element, more = _check_input(raw, path)
        issues += more
    else:
        element = {"type": type_, "text": raw.get("text")}
    return (None if issues else element), issues


def _check_url(url: str, path: str) -> list[FieldIssue]:
    # A URL that starts with a placeholder is only known when the card renders.
    if url.startswith("{{") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:\S", url):
        return []
    return [FieldIssue(path, "must be an absolute URL (https://..., or an app link) or start with "
                             "a placeholder")]


def _check_button(raw: Mapping[str, Any], path: str) -> tuple[dict[str, Any], list[FieldIssue]]:
    action = raw.get("action")
    element: dict[str, Any] = {"type": "button", "label": raw.get("label"), "action": action}
    issues: list[FieldIssue] = []
    if action not in BUTTON_ACTIONS:
        issues.append(FieldIssue(f"{path}.action", f"must be one of {', '.join(BUTTON_ACTIONS)}"))
    own = {"link": "url", "custom": "value", "snooze": "snoozeFor"}
    for action_name, key in own.items():
        if key in raw and action != action_name:
            issues.append(FieldIssue(f"{path}.{key}", f"only a {action_name!r} button takes {key!r}"))
    if action == "link":
        url = raw.get("url")
        if not _is_text(url) or not url:
            issues.append(FieldIssue(f"{path}.url", "a link button needs a url"))
        else:
            issues += _check_url(url, f"{path}.url")
        element["url"] = url
    if action == "custom" and "value" in raw:
        element["value"] = raw["value"]
    if action == "snooze" and raw.get("snoozeFor") is not None:
        _duration_seconds(raw["snoozeFor"], f"{path}.snoozeFor", issues)
        element["snoozeFor"] = raw["snoozeFor"]
    return element, issues


def _check_input(raw: Mapping[str, Any], path: str) -> tuple[dict[str, Any], list[FieldIssue]]:
    input_type = raw.get("inputType")
    issues: list[FieldIssue] = []
    if input_type not in INPUT_TYPES:
        return {}, [FieldIssue(f"{path}.inputType", f"must be one of {', '.join(INPUT_TYPES)}")]
    input_id = raw.get("id")
    if not isinstance(input_id, str) or not INPUT_ID.fullmatch(input_id):
        issues.append(FieldIssue(f"{path}.id", "must start with a letter or '_' and hold only letters, "
                                               "digits and '_' (at most 64)"))
    required = raw.get("required", False)
    if not isinstance(required, bool):
        issues.append(FieldIssue(f"{path}.required", "must be true or false"))
    element: dict[str, Any] = {"type": "input", "inputType": input_type, "id": input_id,
                               "label": raw.get("label"), "required": required}
    if "placeholder" in raw:
        element["placeholder"] = raw["placeholder"]
    if input_type in ("checkbox", "dropdown"):
        element["options"] = _check_options(raw.get("options"), f"{path}.options", issues)
    elif "options" in raw:
        issues.append(FieldIssue(f"{path}.options", "only checkbox and dropdown inputs take options"))
    validation = raw.get("validation")
    if validation is not None:
        element["validation"] = _check_validation(validation, str(input_type), f"{path}.validation", issues)
    return element, issues


def _check_options(raw: Any, path: str, issues: list[FieldIssue]) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_OPTIONS:
        issues.append(FieldIssue(path, f'must be a list of 1-{MAX_OPTIONS} {{"value", "label"}} options'))
        return []
    options: list[dict[str, str]] = []
    for index, option in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(option, Mapping) or set(option) - {"value", "label"} \
                or not _is_text(option.get("value")) or not option.get("value"):
            issues.append(FieldIssue(item_path, 'must be {"value": non-empty string, "label": string}'))
            continue
        label = option.get("label", option["value"])
        if not _is_text(label):
            issues.append(FieldIssue(f"{item_path}.label", "must be a string"))
            continue
        if any(existing["value"] == option["value"] for existing in options):
            issues.append(FieldIssue(f"{item_path}.value", f"duplicate option value {option['value']!r}"))
            continue
        options.append({"value": option["value"], "label": label})
    return options


def _check_validation(raw: Any, input_type: str, path: str, issues: list[FieldIssue]) -> dict[str, Any]:
    allowed = VALIDATION_KEYS[input_type]
    if not isinstance(raw, Mapping):
        issues.append(FieldIssue(path, "must be an object"))
        return {}
    if not allowed:
        issues.append(FieldIssue(path, f"a {input_type} input takes no validation"))
        return {}
    issues += _unknown_keys(raw, allowed, path)
    rules = {key: value for key, value in raw.items() if key in allowed}
    for key in ("minLength", "maxLength"):
        if key in rules and (type(rules[key]) is not int or rules[key] < 0):
            issues.append(FieldIssue(f"{path}.{key}", "must be a non-negative integer"))
    if "pattern" in rules:
        try:
            re.compile(rules["pattern"])
        except (re.error, TypeError) as exc:
            issues.append(FieldIssue(f"{path}.pattern", f"must be a regular expression ({exc})"))
    if "integer" in rules and not isinstance(rules["integer"], bool):
        issues.append(FieldIssue(f"{path}.integer", "must be true or false"))
    for key in ("min", "max"):
        if key not in rules:
            continue
        if input_type == "number" and not _finite_number(rules[key]):
            issues.append(FieldIssue(f"{path}.{key}", "must be a number"))
        if input_type == "date" and _as_date(rules[key]) is None:
            issues.append(FieldIssue(f"{path}.{key}", "must be an ISO date (2026-01-31)"))
    for low, high in (("minLength", "maxLength"), ("min", "max")):
        if low in rules and high in rules and not any(i.field.startswith(path) for i in issues):
            if rules[low] > rules[high]:
                issues.append(FieldIssue(f"{path}.{low}", f"must not be greater than {high}"))
    return dict(rules)


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# --- rendering and submissions ----------------------------------------------------------------


def render_card(template: CardTemplate, context: Mapping[str, Any]) -> dict[str, Any]:
    """A template's content for one customer: every placeholder filled in.

    Strings shown to people (text, labels, urls, options, push title and body) render as text
    even when they are a single placeholder; a custom button's ``value`` keeps its type. Ids,
    types and validation rules are copied as they are.
    """
    elements = []
    for element in template.elements:
        rendered: dict[str, Any] = {}
        for key, value in element.items():
            if key in _CARD_TEXT and isinstance(value, str):
                rendered[key] = render_text(value, context)
            elif key == "options":
                rendered[key] = [{k: render_text(v, context) for k, v in option.items()} for option in value]
            elif key == "value":
                rendered[key] = render(value, context)
            else:
                rendered[key] = value
        elements.append(rendered)
    push = None
    if template.push is not None:
        push = {key: render_text(value, context) if key in ("title", "body") else list(value)
                for key, value in template.push.items()}
    return {"templateId": template.id, "name": template.name, "elements": elements, "push": push}


def validate_submission(elements: Sequence[Mapping[str, Any]], values: Mapping[str, Any]
                        ) -> tuple[dict[str, Any], list[FieldIssue]]:
    """The submitted input values, checked against the card's input elements and normalised.

    Missing optional inputs are left out; ``None`` counts as missing. Paths are ``values.<id>``.
    """
    if not isinstance(values, Mapping):
        return {}, [FieldIssue("values", "must be an object")]
    inputs = {element["id"]: element for element in elements if isinstance(element, Mapping)
              and element.get("type") == "input" and isinstance(element.get("id"), str)}
    clean: dict[str, Any] = {}
    issues = [FieldIssue(f"values.{key}", "is not an input of this card")
              for key in values if key not in inputs]
    for input_id, element in inputs.items():
        path = f"values.{input_id}"
        value = values.get(str(input_id))
        if value is None or value == "" or value == []:
            if element.get("required"):
                issues.append(FieldIssue(path, "is required"))
            continue
        try:
            clean[str(input_id)] = _check_input_value(element, value)
        except ValueError as exc:
            issues.append(FieldIssue(path, str(exc)))
    return clean, issues


def _check_input_value(element: Mapping[str, Any], value: Any) -> Any:
    input_type = element.get("inputType")
    rules = element.get("validation") or {}
    if input_type == "text":
        if not _is_text(value):
            raise ValueError(f"must be a string of at most {TEXT_MAX} characters")
        if _finite_number(rules.get("minLength")) and len(value) < rules["minLength"]:
            raise ValueError(f"must be at least {rules['minLength']} characters")
        if _finite_number(rules.get("maxLength")) and len(value) > rules["maxLength"]:
            raise ValueError(f"must be at most {rules['maxLength']} characters")
        if isinstance(rules.get("pattern"), str) and not _matches(rules["pattern"], value):
            raise ValueError("does not have the expected format")
        return value
    if input_type == "number":
        return _check_number(rules, value)
    if input_type == "date":
        day = _as_date(value)
        if day is None:
            raise ValueError("must be an ISO date (2026-01-31)")
        low, high = _as_date(rules.get("min")), _as_date(rules.get("max"))
        if low is not None and day < low:
            raise ValueError(f"must be on or after {low.isoformat()}")
        if high is not None and day > high:
            raise ValueError(f"must be on or before {high.isoformat()}")
        return day.isoformat()
    options = [option.get("value") for option in element.get("options") or [] if isinstance(option, Mapping)]
    if input_type == "dropdown":
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"must be one of {', '.join(map(str, options))}")
        return value
    if input_type == "checkbox":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of the selected option values")
        unknown = [v for v in value if v not in options]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not an option (one of {', '.join(map(str, options))})")
        return list(dict.fromkeys(value))
    if input_type == "toggle":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    raise ValueError(f"the card's input has an unknown type {input_type!r}")


def _check_number(rules: Mapping[str, Any], value: Any) -> Any:
    if not _finite_number(value):
        raise ValueError("must be a number")
    if rules.get("integer") is True:
        if not float(value).is_integer():
            raise ValueError("must be a whole number")
        value = int(value)
    if _finite_number(rules.get("min")) and value < rules["min"]:
        raise ValueError(f"must be at least {rules['min']}")
    if _finite_number(rules.get("max")) and value > rules["max"]:
        raise ValueError(f"must be at most {rules['max']}")
    return value


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False



def template_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a card template's JSON form, elements included."""
    text = {"type": "string", "maxLength": TEXT_MAX}
    option = {"type": "object", "additionalProperties": False, "required": ["value"],
              "properties": {"value": {"type": "string", "minLength": 1}, "label": text}}
    validation = {"type": "object", "additionalProperties": False, "properties": {
        "minLength": {"type": "integer", "minimum": 0}, "maxLength": {"type": "integer", "minimum": 0},
        "pattern": {"type": "string", "format": "regex"}, "integer": {"type": "boolean"},
        "min": {"type": ["number", "string"]}, "max": {"type": ["number", "string"]}}}
    variants: dict[str, dict[str, Any]] = {
        "headline": {"text": text}, "text": {"text": text},
        "image": {"url": text, "alt": text},
        "button": {"label": text, "action": {"enum": list(BUTTON_ACTIONS)}, "url": text, "value": {},
                   "snoozeFor": DURATION_SCHEMA},
        "input": {"inputType": {"enum": list(INPUT_TYPES)},
                  "id": {"type": "string", "pattern": f"^{INPUT_ID.pattern}$"}, "label": text,
                  "required": {"type": "boolean", "default": False}, "placeholder": text,
                  "options": {"type": "array", "items": option, "minItems": 1, "maxItems": MAX_OPTIONS},
                  "validation": validation},
    }
    element = {"oneOf": [
        {"type": "object", "additionalProperties": False,
         "required": ["type", *sorted(ELEMENT_KEYS[name][1])],
         "properties": {"type": {"const": name}, **properties}}
        for name, properties in variants.items()]}
    duration_or_null = {"anyOf": [DURATION_SCHEMA, {"type": "null"}]}
    return {
        "type": "object", "additionalProperties": False, "required": ["id", "name"],
        "properties": {
            "id": {"type": "string", "pattern": f"^{TEMPLATE_ID.pattern}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "priority": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
            "expiresIn": duration_or_null, "embargoFor": duration_or_null,
            "streams": {"type": "array", "items": {"type": "string", "pattern": f"^{STREAM_ID.pattern}$"},
                        "minItems": 1, "default": ["default"]},
            "platforms": {"type": "array", "items": {"enum": list(PLATFORMS)}, "minItems": 1,
                          "default": list(PLATFORMS)},
            "elements": {"type": "array", "items": element, "maxItems": MAX_ELEMENTS},
            "push": {"anyOf": [{"type": "null"}, {
                "type": "object", "additionalProperties": False, "required": ["title", "body"],
                "properties": {"title": {"type": "string", "minLength": 1},
                               "body": {"type": "string", "minLength": 1},
                               "extraPlatforms": {"type": "array", "minItems": 1, "items": {
                                   "type": "string", "not": {"enum": list(PLATFORMS)}}}}}]},
        },
    }
