"""Finding a customer from what a caller says: a user id, a name, an email, a phone, any field.

One box. What is typed is read as:

- ``field:value`` (``phone:+44 20 7946 0958``, ``email:ann@``, ``plan:gold``, ``id:cust-12``)
  when ``field`` is a user-id synonym (``id``, ``user``, ``userid``, ``user_id``), a built-in
  field (name, email, phone, city, country, region) or one of the environment's custom fields;
- otherwise, or with the picker on "Anything": the user id (exact, then prefix), the email
  (case-insensitive prefix), the name (case-insensitive prefix) and, when it looks like a phone
  number, the phone (exact); exact user-id matches first.

How each field is matched: the user id by prefix (the exact id first); name and email by
case-insensitive prefix (so an exact email is a prefix of itself and comes first); every other
field by exact value, read as the field's type (a number, a date, true/false).

Every statement is bounded to the environment and, on PostgreSQL, served by an index of
migration 0004: ``user_id COLLATE "C"`` and ``lower(fields ->> 'email'|'name') COLLATE "C"``
ranges (``>= prefix AND < prefix || U+10FFFF``: byte order, so any database collation works),
and ``fields @> '{"field": value}'`` through the GIN index on ``fields``. No ``%x%`` scans.
On SQLite the same searches run on ``json_extract`` without those indexes.

Statements are built once per dialect and run through ``hub.db.read`` (one round trip, no
transaction).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Text, bindparam, cast, collate, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from hub.core import customers as core
from hub.db import tables

if TYPE_CHECKING:
    from hub.app import Hub

C = tables.customer.c
PAGE_SIZE = 50
MAX_PAGE = 100  # paging is by offset; past 5,000 results, narrow the search instead
TOP = "\U0010ffff"  # the greatest code point: ``prefix || TOP`` bounds every string with ``prefix``
USER_ID_NAMES = frozenset({"id", "user", "userid", "user_id", "userId"})
PREFIX_FIELDS = ("name", "email")
PHONE = re.compile(r"\+?[0-9][0-9 ().-]{4,}")
FIELD_QUERY = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,63}):\s*(.*)", re.S)
PHONE_NOISE = re.compile(r"[ ().-]")


class SearchError(ValueError):
    """The search cannot run as typed (a value that is not of its field's type)."""


@dataclass(frozen=True)
class Search:
    """What to look for: ``field`` is ``"any"``, ``"user_id"`` or a profile field's name."""

    field: str
    value: str
    page: int = 1


@dataclass(frozen=True)
class Result:
    rows: list[dict[str, Any]]
    has_next: bool
    exact: str | None  # the user id matched exactly, when one was


def read(raw: str, picked: str, fields: dict[str, str]) -> Search:
    """The search a support person means by typing ``raw`` with ``picked`` in the field picker
    (``fields``: every searchable profile field, name to type)."""
    value = raw.strip()
    field = picked if picked == "user_id" or picked in fields else "any"
    if field == "any":
        found = FIELD_QUERY.fullmatch(value)
        if found and (found.group(1) in USER_ID_NAMES or found.group(1) in fields):
            field = "user_id" if found.group(1) in USER_ID_NAMES else found.group(1)
            value = found.group(2).strip()
    return Search(field, value)


# --- statements (built once per dialect) ------------------------------------------------------


def _text_of(dialect: str, name: str) -> Any:
    """``fields ->> name`` as SQL text, so PostgreSQL matches it with the expression indexes."""
    if dialect == "postgresql":
        return literal_column(f"fields ->> '{name}'", String)
    return literal_column(f"json_extract(fields, '$.{name}')", String)


def _columns(dialect: str) -> list[Any]:
    return [C.id, C.user_id, C.tags, C.last_seen_at, _text_of(dialect, "name").label("name"),
            _text_of(dialect, "email").label("email")]


def _paged(query: Any) -> Any:
    return query.limit(bindparam("limit")).offset(bindparam("offset"))


def _statements(dialect: str) -> dict[str, Any]:
    base = select(*_columns(dialect)).where(C.environment_id == bindparam("env"))
    prefix = bindparam("prefix", type_=String)
    upper = bindparam("upper", type_=String)
    low, high = func.lower(prefix), func.lower(prefix).op("||")(bindparam("top", type_=String))
    if dialect == "postgresql":
        # Written as the indexes of migration 0004 are, so the planner matches them.
        user_id = literal_column('user_id COLLATE "C"', String)
        lowered = {f: literal_column(f"lower(fields ->> '{f}') COLLATE \"C\"", String)
                   for f in PREFIX_FIELDS}
        low, high = collate(low, "C"), collate(high, "C")
        field_match = or_(*(C.fields.op("@>")(cast(bindparam(n, type_=Text), JSONB))
                            for n in ("doc_a", "doc_b")))
    else:
        user_id = C.user_id
        lowered = {f: func.lower(_text_of(dialect, f)) for f in PREFIX_FIELDS}
        field_match = func.json_extract(C.fields, bindparam("path")).in_(
            [bindparam("value_a"), bindparam("value_b")])
    statements = {
        "user_id_exact": base.where(C.user_id == bindparam("value")),
        "user_id_prefix": _paged(base.where(user_id >= prefix, user_id < upper).order_by(user_id)),
        # ``id + 0``: no index gives that order, so the planner finds the rows through the
        # field's index and sorts them, rather than walking the whole table in id order hoping
        # to meet them (exact values identify a few customers: a phone, an account number).
        "field": _paged(base.where(field_match).order_by(C.id + literal_column("0"))),
        "all": _paged(base.order_by(C.user_id)),
    }
    for name, column in lowered.items():
        statements[f"{name}_prefix"] = _paged(base.where(column >= low, column < high)
                                              .order_by(column, C.id))
    return statements


_BUILT: dict[str, dict[str, Any]] = {}


def statements(dialect: str) -> dict[str, Any]:
    """The search's statements for ``dialect`` (built on first use, then reused)."""
    if dialect not in _BUILT:
        _BUILT[dialect] = _statements(dialect)
    return _BUILT[dialect]


# --- running a search ---------------------------------------------------------------------


def _field_params(dialect: str, name: str, values: list[Any]) -> dict[str, Any]:
    a, b = (values + values)[:2]
    if dialect == "postgresql":
        return {"doc_a": json.dumps({name: a}), "doc_b": json.dumps({name: b})}
    return {"path": f'$."{name}"', "value_a": a, "value_b": b}


def _field_values(name: str, type_: str, raw: str) -> list[Any]:
    try:
        value = core.parse_filter_value(type_, raw)
    except ValueError as exc:
        raise SearchError(f"{name}: {exc}") from None
    if name == "phone":
        compact = PHONE_NOISE.sub("", raw)
        return list(dict.fromkeys([value, compact]))
    return [value]


async def search(hub: Hub, env: str, wanted: Search, fields: dict[str, str]) -> Result:
    """One page of customers of ``env`` matching ``wanted`` (``fields``: name to type)."""
    dialect = hub.db.dialect
    built = statements(dialect)
    page = min(max(wanted.page, 1), MAX_PAGE)
    value = wanted.value
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise SearchError("the search cannot contain control characters")
    base = {"env": env}

    async def run(name: str, params: dict[str, Any], offset: int, limit: int) -> list[dict[str, Any]]:
        return await hub.db.read(built[name], {**base, **params, "offset": offset, "limit": limit})

    offset = (page - 1) * PAGE_SIZE
    if not value:
        rows = await run("all", {}, offset, PAGE_SIZE + 1)
        return Result(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, None)
    bounds = {"prefix": value, "top": TOP}
    exact = None
    if wanted.field in ("any", "user_id") and not core.check_user_id(value):
        found = await hub.db.read(built["user_id_exact"], {**base, "value": value})
        exact = found[0]["user_id"] if found else None
    if wanted.field == "user_id":
        rows = await run("user_id_prefix", {"prefix": value, "upper": value + TOP}, offset, PAGE_SIZE + 1)
        return Result(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, exact)
    if wanted.field in PREFIX_FIELDS:
        rows = await run(f"{wanted.field}_prefix", bounds, offset, PAGE_SIZE + 1)
        return Result(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, None)
    if wanted.field != "any":
        values = _field_values(wanted.field, fields[wanted.field], value)
        rows = await run("field", _field_params(dialect, wanted.field, values), offset, PAGE_SIZE + 1)
        return Result(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, None)
    # Anything: each kind of match is one indexed query; merged in this order without repeats.
    wanted_rows = page * PAGE_SIZE + 1
    parts = [await run("user_id_prefix", {"prefix": value, "upper": value + TOP}, 0, wanted_rows)]
    if " " not in value:
        parts.append(await run("email_prefix", bounds, 0, wanted_rows))
    parts.append(await run("name_prefix", bounds, 0, wanted_rows))
    if PHONE.fullmatch(value):
        phones = _field_params(dialect, "phone", _field_values("phone", "text", value))
        parts.append(await run("field", phones, 0, wanted_rows))
    merged: dict[int, dict[str, Any]] = {}
    if exact is not None:
        for row in parts[0]:
            if row["user_id"] == exact:
                merged[row["id"]] = row
    for part in parts:
        for row in part:
            merged.setdefault(row["id"], row)
    ordered = list(merged.values())
    return Result(ordered[offset:offset + PAGE_SIZE], len(ordered) > offset + PAGE_SIZE, exact)


async def searchable_fields(hub: Hub, env: str) -> dict[str, str]:
    """Every profile field of ``env`` one can search by: built-ins, then custom ones."""
    from hub.services import customers as customer_service

    return {f["name"]: f["type"] for f in await customer_service.list_fields(hub, env)}
