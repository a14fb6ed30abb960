"""Payload mapping of inbound triggers: which parts of an incoming JSON body start which flow.

A mapping names, for one flow start, the customer (``userId``, or several with ``userIds``), the
flow's ``variables``, the invocation's ``metadata`` and ``notificationDetail``, and the
``idempotencyKey``. Each value is a path into the body, or an object::

    "$.transaction.merchant.name"                 # a small JSON path ($, .name, [0], [*], ["a.b"])
    "/transaction/merchant/name"                  # or an RFC 6901 JSON Pointer
    {"path": "$.paidAt", "optional": true}        # left out when the body has no such value
    {"path": "$.channel", "default": "card"}      # this value when the body has none
    {"const": "core-banking"}                     # always this value

Pure Python (no I/O): :func:`parse_mapping` checks a mapping as stored, :func:`apply_mapping`
runs it over a body. Every problem names where it is: a path of the mapping (``mapping.userId``)
or of the body (``transaction.merchant``), and the reason, with what it was mapped to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

from hub.core.customers import FieldIssue, check_user_id

MAX_PATH_LENGTH = 500
MAX_PATH_STEPS = 32
MAX_ENTRIES = 100  # variables, metadata or notificationDetail entries of one mapping
MAX_KEY_LENGTH = 1000  # an idempotency key (it is hashed, never stored as given)
SECTIONS = ("variables", "metadata", "notificationDetail")
KEYS = ("userId", "userIds", "idempotencyKey", *SECTIONS)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_DOTTED_NAME = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


class Wild:
    """The ``[*]`` step: every element of an array."""

    def __repr__(self) -> str:
        return "[*]"


WILD = Wild()
Step = str | int | Wild  # a key; an array index ([n]); every element ([*])


@dataclass(frozen=True)
class Path:
    """A parsed path. JSON Pointer tokens are ``str`` and index arrays when they are digits."""

    text: str
    steps: tuple[Step, ...]
    pointer: bool

    @property
    def many(self) -> bool:
        return any(isinstance(step, Wild) for step in self.steps)


@dataclass(frozen=True)
class ValueSpec:
    path: Path | None = None
    const: Any = None
    default: Any = None
    has_default: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Mapping:
    user_id: ValueSpec | None
    user_ids: ValueSpec | None
    idempotency_key: ValueSpec | None
    sections: dict[str, dict[str, ValueSpec]]
    raw: dict[str, Any]


@dataclass
class Mapped:
    """What a body maps to; ``sources`` says which body path each value came from."""

    user_ids: list[str] = field(default_factory=list)
    values: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: {} for s in SECTIONS})
    idempotency_key: str | None = None
    sources: dict[str, str] = field(default_factory=dict)


class Miss(Exception):
    """A path that does not lead to a value: ``where`` (a body path) and ``reason``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


# --- paths ----------------------------------------------------------------------------------


def parse_path(text: Any) -> Path:
    """A path from its text; ``ValueError`` with the reason when it is not one."""
    if not isinstance(text, str):
        raise ValueError("must be a path: a JSON Pointer (/a/b) or a JSON path ($.a.b)")
    if len(text) > MAX_PATH_LENGTH:
        raise ValueError(f"must be at most {MAX_PATH_LENGTH} characters")
    if text == "" or text.startswith("/"):
        steps: list[Step] = [_unescape(token) for token in text.split("/")[1:]]
        pointer = True
    elif text.startswith("$"):
        steps = list(_dotted(text))
        pointer = False
    else:
        raise ValueError("must be a JSON Pointer starting with / (/a/b) "
                         "or a JSON path starting with $ ($.a.b)")
    if len(steps) > MAX_PATH_STEPS:
        raise ValueError(f"must have at most {MAX_PATH_STEPS} steps")
    return Path(text, tuple(steps), pointer)


def _unescape(token: str) -> str:
    if re.search(r"~[^01]|~$", token):
        raise ValueError(f"invalid JSON Pointer escape in {token!r}: use ~0 for ~ and ~1 for /")
    return token.replace("~1", "/").replace("~0", "~")


def _dotted(text: str) -> Iterator[Step]:
    i = 1
    while i < len(text):
        if text[i] == ".":
            match = _DOTTED_NAME.match(text, i + 1)
            if match is None:
                raise ValueError(f"expected a name after '.' at character {i + 1}")
            yield match.group()
            i = match.end()
        elif text[i] == "[":
            end = text.find("]", i)
            if text[i + 1:i + 2] in ("'", '"'):
                quote = text[i + 1]
                end = text.find(quote + "]", i + 2)
                if end < 0:
                    raise ValueError(f"unterminated [{quote}...{quote}] at character {i}")
                yield text[i + 2:end]
                i = end + 2
                continue
            if end < 0:
                raise ValueError(f"unterminated [ at character {i}")
            inner = text[i + 1:end]
            if inner == "*":
                yield WILD
            elif _INDEX.match(inner):
                yield int(inner)
            else:
                raise ValueError(f"[{inner}] is not an index: use [0], [*] or [\"name\"]")
            i = end + 1
        else:
            raise ValueError(f"unexpected {text[i]!r} at character {i}: use .name, [0], [*] or [\"name\"]")


def render(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """A concrete body path as problems name fields: ``accounts[2].owner``, ``body`` for the root."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += ("." if out else "") + part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "body"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def resolve(path: Path, document: Any) -> list[tuple[str, Any]]:
    """Every (body path, value) ``path`` reaches; raises :class:`Miss` where it stops."""
    found: list[tuple[str, Any]] = []
    _walk(path.steps, document, [], found)
    return found


def _walk(steps: tuple[Step, ...], value: Any, where: list[str | int], found: list[tuple[str, Any]]) -> None:
    if not steps:
        found.append((render(where), value))
        return
    step, rest = steps[0], steps[1:]
    if isinstance(step, Wild):
        if not isinstance(value, list):
            raise Miss(render(where), f"is {_kind(value)}, not an array, so [*] cannot apply")
        for index, item in enumerate(value):
            _walk(rest, item, [*where, index], found)
        return
    if isinstance(value, list):
        index = step if isinstance(step, int) else int(step) if _INDEX.match(step) else None
        if index is None:
            raise Miss(render(where), f"is an array: {step!r} is not an index")
        if index >= len(value):
            raise Miss(render([*where, index]), f"not found (the array has {len(value)} items)")
        _walk(rest, value[index], [*where, index], found)
        return
    if isinstance(value, dict):
        key = str(step)
        if isinstance(step, int):
            raise Miss(render(where), f"is an object, not an array, so [{step}] cannot apply")
        if key not in value:
            raise Miss(render([*where, key]), "not found")
        _walk(rest, value[key], [*where, key], found)
        return
    raise Miss(render(where), f"is {_kind(value)}, so it has no {render([step])!r}")


# --- mappings -------------------------------------------------------------------------------


def _spec(raw: Any, where: str, *, allow_const: bool = True) -> tuple[ValueSpec | None, list[FieldIssue]]:
    if isinstance(raw, str):
        try:
            return ValueSpec(path=parse_path(raw)), []
        except ValueError as exc:
            return None, [FieldIssue(where, str(exc))]
    if not isinstance(raw, MappingABC):
        return None, [FieldIssue(where, 'must be a path string, {"path": ...} or {"const": ...}')]
    unknown = sorted(set(raw) - {"path", "const", "default", "optional"})
    if unknown:
        return None, [FieldIssue(f"{where}.{unknown[0]}",
                                 "unknown field: use path, default, optional or const")]
    if "const" in raw:
        if not allow_const:
            return None, [FieldIssue(f"{where}.const", "must be a path, not a constant")]
        if set(raw) != {"const"}:
            return None, [FieldIssue(where, "const cannot be combined with path, default or optional")]
        return ValueSpec(const=raw["const"]), []
    if "path" not in raw:
        return None, [FieldIssue(f"{where}.path", "required (or give const)")]
    try:
        path = parse_path(raw["path"])
    except ValueError as exc:
        return None, [FieldIssue(f"{where}.path", str(exc))]
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        return None, [FieldIssue(f"{where}.optional", "must be true or false")]
    if optional and "default" in raw:
        return None, [FieldIssue(where, "give default or optional, not both")]
    return ValueSpec(path=path, default=raw.get("default"), has_default="default" in raw,
                     optional=optional), []


def parse_mapping(raw: Any, prefix: str = "mapping") -> tuple[Mapping | None, list[FieldIssue]]:
    """Check a mapping; ``None`` (or ``{}``) means none: the body is a start request itself."""
    if raw is None or raw == {}:
        return None, []
    if not isinstance(raw, MappingABC):
        return None, [FieldIssue(prefix, "must be an object")]
    issues = [FieldIssue(f"{prefix}.{k}", f"unknown field: use {', '.join(KEYS)}")
              for k in sorted(set(raw) - set(KEYS))]
    if ("userId" in raw) == ("userIds" in raw):
        issues.append(FieldIssue(prefix, "must have exactly one of userId and userIds"))
    single: dict[str, ValueSpec | None] = {}
    for key in ("userId", "userIds", "idempotencyKey"):
        single[key] = None
        if key in raw:
            spec, more = _spec(raw[key], f"{prefix}.{key}", allow_const=key != "idempotencyKey")
            issues += more
            single[key] = spec
            if spec is not None and key != "userIds" and spec.path is not None and spec.path.many:
                issues.append(FieldIssue(f"{prefix}.{key}", "must name one value: [*] is for userIds"))
    sections: dict[str, dict[str, ValueSpec]] = {}
    for section in SECTIONS:
        entries = raw.get(section, {})
        sections[section] = {}
        if not isinstance(entries, MappingABC):
            issues.append(FieldIssue(f"{prefix}.{section}", "must be an object of name: path"))
            continue
        if len(entries) > MAX_ENTRIES:
            issues.append(FieldIssue(f"{prefix}.{section}", f"at most {MAX_ENTRIES} entries"))
            continue
        for name, entry in entries.items():
            where = f"{prefix}.{section}.{name}"
            if not name or len(name) > 64:
                issues.append(FieldIssue(where, "names must be 1-64 characters"))
                continue
            spec, more = _spec(entry, where)
            issues += more
            if spec is not None:
                sections[section][name] = spec
    if issues:
        return None, issues
    clean = {k: raw[k] for k in KEYS if k in raw and raw[k] != {}}
    return Mapping(single["userId"], single["userIds"], single["idempotencyKey"], sections, clean), []


def _value(spec: ValueSpec, body: Any, target: str, out: Mapped,
           issues: list[FieldIssue]) -> tuple[bool, Any]:
    """(found, value) of one spec; a missing required value adds an issue."""
    if spec.path is None:
        return True, spec.const
    try:
        found = resolve(spec.path, body)
    except Miss as miss:
        if spec.has_default:
            return True, spec.default
        if not spec.optional:
            issues.append(FieldIssue(miss.where, f"{miss.reason} (mapped to {target} by {spec.path.text!r})"))
        return False, None
    if spec.path.many:
        out.sources[target] = render([]) if not found else found[0][0]
        return True, [value for _where, value in found]
    out.sources[target] = found[0][0]
    return True, found[0][1]


def _user_id(value: Any, where: str, target: str, issues: list[FieldIssue]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # core-banking ids are often numbers
    problems = check_user_id(value, where)
    if problems:
        issues += [FieldIssue(p.field, f"{p.reason} (mapped to {target})") for p in problems]
        return None
    return str(value)


def apply_mapping(mapping: Mapping, body: Any, *, max_users: int,
                  header_key: str | None = None) -> tuple[Mapped, list[FieldIssue]]:
    """Run ``mapping`` over ``body``: the start it describes, or every reason it does not map."""
    out = Mapped()
    issues: list[FieldIssue] = []
    if mapping.user_id is not None:
        found, value = _value(mapping.user_id, body, "userId", out, issues)
        if found:
            user = _user_id(value, out.sources.get("userId", "mapping.userId"), "userId", issues)
            out.user_ids = [user] if user else []
    elif mapping.user_ids is not None:
        spec = mapping.user_ids
        found, value = _value(spec, body, "userIds", out, issues)
        if found:
            out.user_ids = _user_ids(spec, body, value, out.sources.get("userIds", "mapping.userIds"),
                                     max_users, issues)
    for section in SECTIONS:
        for name, spec in mapping.sections[section].items():
            found, value = _value(spec, body, f"{section}.{name}", out, issues)
            if found:
                out.values[section][name] = value
    if mapping.idempotency_key is not None:
        found, value = _value(mapping.idempotency_key, body, "idempotencyKey", out, issues)
        if found:
            where = out.sources.get("idempotencyKey", "mapping.idempotencyKey")
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value or len(value) > MAX_KEY_LENGTH:
                issues.append(FieldIssue(where, f"must be a non-empty string of at most {MAX_KEY_LENGTH} "
                                         f"characters, got {_kind(value)} (mapped to idempotencyKey)"))
            else:
                out.idempotency_key = value
    elif header_key is not None:
        out.idempotency_key = header_key
    return out, issues


def _user_ids(spec: ValueSpec, body: Any, value: Any, where: str, max_users: int,
              issues: list[FieldIssue]) -> list[str]:
    if spec.path is not None and spec.path.many:
        pairs = resolve(spec.path, body)
    elif isinstance(value, list):
        pairs = [(f"{where}[{i}]" if where != "body" else f"[{i}]", v) for i, v in enumerate(value)]
    else:
        pairs = [(where, value)]
    users: list[str] = []
    for item_where, item in pairs:
        user = _user_id(item, item_where, "userIds", issues)
        if user:
            users.append(user)
    users = list(dict.fromkeys(users))
    if not users and not issues:
        issues.append(FieldIssue(where, "no user ids found (mapped to userIds)"))
    if len(users) > max_users:
        issues.append(FieldIssue(where, f"{len(users)} user ids; at most {max_users} "
                                 "(HUB_WEBHOOKS_INBOUND_MAX_USERS) (mapped to userIds)"))
    return users
