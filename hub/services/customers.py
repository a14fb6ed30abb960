"""Customer use-cases: batch upsert, read, list, delete, erase, field definitions.

Every other part of Hub that names a customer goes through :func:`ensure_customers`, so a
profile exists the first time anything names the user.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, bindparam, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core import customers as core
from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.db import bulk_insert, insert_ignore, lock_for_write, tables
from hub.hookspecs import hookimpl
from hub.logging import get_logger
from hub.plugins import call_hook
from hub.services.outbox import transaction

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

C = tables.customer.c
T = tables.customer_tag.c
F = tables.field_definition.c

UPSERT_KEYS = frozenset({"userId", "fields", "tags", "addTags", "removeTags", "preferences",
                         "isTestUser"})


class NotFound(LookupError):
    """No such customer in this environment."""


class Conflict(ValueError):
    """The request contradicts what is stored (a field redefined with another type)."""


def customer_from_row(row: Any) -> core.Customer:
    """The API shape of a ``hub_customer`` row or mapping (preferences completed with defaults)."""
    m = getattr(row, "_mapping", row)
    return core.Customer(
        user_id=m["user_id"], fields=m["fields"], tags=m["tags"],
        preferences=core.merge_preferences(m["preferences"], {}), is_test_user=m["is_test_user"],
        created_at=m["created_at"], updated_at=m["updated_at"],
        first_seen_at=m["first_seen_at"], last_seen_at=m["last_seen_at"],
    )


# --- field definitions ----------------------------------------------------------------------


async def field_types(conn: AsyncConnection, env: str) -> dict[str, str]:
    """The environment's custom fields, name to type (built-ins not included)."""
    rows = await conn.execute(select(F.name, F.type).where(F.environment_id == env))
    return {name: type_ for name, type_ in rows.all()}


def field_json(row: Any) -> dict[str, Any]:
    """The API shape of a ``hub_field_definition`` row."""
    return {"name": row.name, "type": row.type, "label": row.label,
            "description": row.description, "builtin": False}


async def list_fields(hub: Hub, env: str) -> list[dict[str, Any]]:
    """Built-in fields first, then the environment's custom fields by name."""
    builtins = [{"name": n, "type": t, "label": n.capitalize(), "description": "", "builtin": True}
                for n, t in core.BUILTIN_FIELDS.items()]
    async with hub.db.connect() as conn:
        rows = await conn.execute(select(tables.field_definition).where(F.environment_id == env)
                                  .order_by(F.name))
        return builtins + [field_json(r) for r in rows]


async def define_field(hub: Hub, env: str, name: str, type_: str, label: str = "",
                       description: str = "") -> tuple[dict[str, Any], bool]:
    """Declare a custom field; returns (definition, created). Redeclaring a type is a Conflict.

    Declaring it again with the same type changes nothing (label and description included), so
    set-up scripts can run twice, even at the same time.
    """
    issues = core.check_field_definition(name, type_, label, description)
    if issues:
        raise core.ProfileError(issues)
    async with hub.db.begin() as conn:
        created = await insert_ignore(conn, tables.field_definition, {
            "environment_id": env, "name": name, "type": type_, "label": label or name,
            "description": description, "created_at": now()}, ["environment_id", "name"])
        row = (await conn.execute(select(tables.field_definition).where(
            F.environment_id == env, F.name == name))).one()
    if row.type != type_:
        raise Conflict(f"field {name!r} is already defined as {row.type}")
    return field_json(row), bool(created)


# --- upsert ---------------------------------------------------------------------------------

UPSERT_ATTEMPTS = 5  # each retry sees more of the racing rows; few races need more than two


def _validate_item(item: Any, definitions: dict[str, str]) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Check one upsert item; returns (clean item, issues). Paths are relative to the item."""
    if not isinstance(item, dict):
        return {}, [FieldIssue("", "must be an object")]
    issues = [FieldIssue(k, "unknown field (unknown fields are rejected)")
              for k in item if k not in UPSERT_KEYS]
    issues += core.check_user_id(item.get("userId"))
    clean: dict[str, Any] = {"userId": item.get("userId")}
    if "fields" in item:
        clean["fields"], more = core.check_fields(item["fields"], definitions)
        issues += more
    for key in ("tags", "addTags", "removeTags"):
        if key in item:
            clean[key], more = core.check_tags(item[key], key)
            issues += more
    if "preferences" in item:
        clean["preferences"], more = core.check_preferences(item["preferences"])
        issues += more
    if "isTestUser" in item:
        if not isinstance(item["isTestUser"], bool):
            issues.append(FieldIssue("isTestUser", "must be true or false"))
        clean["isTestUser"] = item["isTestUser"]
    return clean, issues


def _item_error(index: int, user_id: Any, issues: list[FieldIssue]) -> dict[str, Any]:
    return {
        "index": index, "userId": user_id if isinstance(user_id, str) else None, "status": "error",
        "errors": [{"field": f"users[{index}]" + (f".{i.field}" if i.field else ""),
                    "reason": i.reason} for i in issues],
    }


def _profile(row: Any) -> core.Profile:
    return core.Profile(row.fields, row.tags, row.preferences, row.is_test_user)


async def _write_tags(conn: AsyncConnection, env: str, rows: Iterable[tuple[int, list[str]]]) -> None:
    rows = list(rows)
    if not rows:
        return
    await conn.execute(delete(tables.customer_tag).where(T.customer_id.in_([r[0] for r in rows])))
    values = [{"customer_id": cid, "tag": tag, "environment_id": env}
              for cid, tags in rows for tag in tags]
    if values:
        await conn.execute(tables.customer_tag.insert(), values)


async def upsert_customers(hub: Hub, env: str, items: Sequence[Any]) -> dict[str, Any]:
    """Create or update up to ``HUB_MAX_BATCH_SIZE`` customers; invalid items are reported.

    Valid items are saved even when others in the batch fail. Each result names the item by its
    index. An upsert racing another to create the same new user is retried: it then updates.
    Rows are locked and new customers created in ``userId`` order (so concurrent batches cannot
    deadlock); listings, which follow creation, show one batch's new customers in that order.
    """
    for attempt in range(1, UPSERT_ATTEMPTS + 1):
        try:
            return await _upsert_once(hub, env, items)
        except IntegrityError:
            if attempt == UPSERT_ATTEMPTS:
                raise
            log.info("customer_upsert_retry", attempt=attempt)
    raise AssertionError("unreachable")


async def _upsert_once(hub: Hub, env: str, items: Sequence[Any]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [{} for _ in items]
    valid: dict[str, tuple[int, dict[str, Any]]] = {}
    announce = bool(hub.pm.hook.hub_customer_changed.get_hookimpls())
    async with transaction(hub) as tx:
        conn = tx.conn
        await lock_for_write(conn)
        definitions = await field_types(conn, env)
        for index, item in enumerate(items):
            clean, issues = _validate_item(item, definitions)
            user_id = clean.get("userId")
            if not issues and user_id in valid:
                issues = [FieldIssue("userId", f"repeats item {valid[user_id][0]} of this batch")]
            if issues:
                results[index] = _item_error(index, user_id, issues)
            else:
                valid[user_id] = (index, clean)
        current: dict[str, Any] = {}
        if valid:
            # Sorted row locks (and sorted inserts below) keep concurrent batches from deadlocking.
            rows = await conn.execute(select(tables.customer).where(
                C.environment_id == env, C.user_id.in_(list(valid))
            ).order_by(C.user_id).with_for_update())
            current = {row.user_id: row for row in rows}
        stamp = now()
        inserts, updates, tag_rows, changed = [], [], [], []
        for user_id in sorted(valid):
            index, item = valid[user_id]
            row = current.get(user_id)
            profile, changes = core.apply_upsert(_profile(row) if row is not None else None, item)
            if len(profile.tags) > core.MAX_TAGS:
                results[index] = _item_error(index, user_id, [FieldIssue(
                    "addTags" if "addTags" in item else "tags",
                    f"the customer would have {len(profile.tags)} tags; at most {core.MAX_TAGS}")])
                continue
            results[index] = {"index": index, "userId": user_id,
                              "status": "created" if row is None else "updated"}
            if not core.has_changes(changes):
                continue  # a repeated sync neither rewrites the row nor wakes plugins
            changed.append([user_id, changes])
            values = {"fields": profile.fields, "preferences": profile.preferences,
                      "tags": profile.tags, "is_test_user": profile.is_test_user}
            if row is None:
                inserts.append({"environment_id": env, "user_id": user_id, "created_at": stamp,
                                "updated_at": stamp, **values})
            else:
                updates.append({"b_id": row.id, "updated_at": stamp, **values})
                if changes["tags"]:
                    tag_rows.append((row.id, profile.tags))
        if inserts:
            created = await conn.execute(
                tables.customer.insert().returning(C.id, C.tags), inserts)
            tag_rows += [(r.id, r.tags) for r in created if r.tags]
        if updates:
            await conn.execute(
                update(tables.customer).where(C.id == bindparam("b_id")).values(
                    fields=bindparam("fields"), preferences=bindparam("preferences"),
                    tags=bindparam("tags"), is_test_user=bindparam("is_test_user"),
                    updated_at=bindparam("updated_at"),
                ),
                updates,
            )
        await _write_tags(conn, env, tag_rows)
        if announce and changed:
            await tx.enqueue("announce_customer_changes", [env, changed],
                             job_id=f"customers:{env}:{uuid.uuid4().hex}")
    counts = {"created": 0, "updated": 0, "error": 0}
    for result in results:
        counts[result["status"]] += 1
    return {"results": results, "created": counts["created"], "updated": counts["updated"],
            "failed": counts["error"]}


async def ensure_customers(conn: AsyncConnection, env: str, user_ids: Sequence[str], *,
                           row_ids: bool = True) -> dict[str, int]:
    """Create missing profiles for ``user_ids`` (in the caller's transaction); returns their row
    ids, or ``{}`` without reading them back when ``row_ids`` is false."""
    stamp = now()
    unique = list(dict.fromkeys(user_ids))
    if unique:
        await bulk_insert(conn, tables.customer, [
            {"environment_id": env, "user_id": uid, "fields": {}, "tags": [],
             "preferences": dict(core.DEFAULT_PREFERENCES), "is_test_user": False,
             "created_at": stamp, "updated_at": stamp} for uid in unique
        ], ["environment_id", "user_id"])
    if not row_ids:
        return {}
    rows = await conn.execute(select(C.id, C.user_id).where(
        C.environment_id == env, C.user_id.in_(unique)))
    return {r.user_id: r.id for r in rows}


async def mark_seen(hub: Hub, env: str, user_id: str) -> None:
    """Record that the customer was seen now (``lastSeenAt``, and ``firstSeenAt`` the first time),
    creating the profile if this is the first time anything names them. For SDKs, which call it
    when an end user's app talks to Hub (at most about once a minute per user: callers throttle)."""
    stamp = now()
    async with hub.db.begin() as conn:
        await ensure_customers(conn, env, [user_id], row_ids=False)
        await conn.execute(update(tables.customer).where(
            C.environment_id == env, C.user_id == user_id,
        ).values(last_seen_at=stamp, first_seen_at=func.coalesce(C.first_seen_at, stamp)))


# --- read -----------------------------------------------------------------------------------

_GET = select(tables.customer)
_GET_ONE = _GET.where(C.environment_id == bindparam("env"), C.user_id == bindparam("user_id"))


async def get_customer(hub: Hub, env: str, user_id: str) -> core.Customer:
    """One customer; ``NotFound`` when the environment has no such user id."""
    if core.check_user_id(user_id):
        raise NotFound(user_id)  # no stored id can look like this (and PostgreSQL refuses NUL)
    rows = await hub.db.read(_GET_ONE, {"env": env, "user_id": user_id})
    if not rows:
        raise NotFound(user_id)
    return customer_from_row(rows[0])


_CURSOR_VERSION = "c1"
_MAX_ID = 2**63 - 1


def encode_cursor(last_id: int) -> str:
    """An opaque cursor for the page after the row ``last_id``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_VERSION}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row id a cursor from :func:`encode_cursor` names; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = text.partition(":")
        if version != _CURSOR_VERSION or not value.isascii() or not value.isdigit():
            raise ValueError
        last_id = int(value)
        if last_id > _MAX_ID:  # would overflow the id column's type in the query
            raise ValueError
        return last_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this API returned") from None


async def list_customers(hub: Hub, env: str, *, tags: Sequence[str] = (),
                         field_filters: dict[str, str] | None = None,
                         is_test_user: bool | None = None, cursor: str | None = None,
                         limit: int = 100) -> dict[str, Any]:
    """One page of customers with every tag in ``tags`` and every ``field == value``.

    Bad input raises ``ProfileError`` naming the query parameter (``query.cursor``,
    ``query.tag``, ``query.field.<name>``).
    """
    issues = [FieldIssue("query.tag", f"{tag!r} is not a valid tag")
              for tag in tags if not core.check_tag(tag)]
    query = select(tables.customer).where(C.environment_id == env)
    if cursor is not None:
        try:
            query = query.where(C.id > decode_cursor(cursor))
        except ValueError as exc:
            issues.append(FieldIssue("query.cursor", str(exc)))
    if issues:
        raise core.ProfileError(issues)
    for tag in dict.fromkeys(tags):
        query = query.where(exists().where(and_(T.customer_id == C.id, T.tag == tag)))
    if is_test_user is not None:
        query = query.where(C.is_test_user == is_test_user)
    async with hub.db.connect() as conn:
        if field_filters:
            definitions = {**core.BUILTIN_FIELDS, **await field_types(conn, env)}
            conditions = [field_condition(definitions, name, raw) for name, raw in field_filters.items()]
            query = query.where(*conditions)
        rows = (await conn.execute(query.order_by(C.id).limit(limit + 1))).all()
    page = rows[:limit]
    return {"users": [customer_from_row(r) for r in page],
            "nextCursor": encode_cursor(page[-1].id) if len(rows) > limit else None}


def field_condition(definitions: dict[str, str], name: str, raw: str) -> Any:
    """SQL for ``fields[name] == raw``, with ``raw`` read as the field's declared type."""
    path = f"query.field.{name}"
    type_ = definitions.get(name)
    if type_ is None:
        raise core.ProfileError([FieldIssue(path, "is not a defined field")])
    try:
        value = core.parse_filter_value(type_, raw)
    except ValueError as exc:
        raise core.ProfileError([FieldIssue(path, f"{exc} (field type {type_})")]) from None
    column = C.fields[name]
    if type_ == "number":
        return column.as_float() == value
    if type_ == "boolean":
        return column.as_boolean() == value
    return column.as_string() == value


async def count_customers(hub: Hub, env: str) -> int:
    """How many customers the environment has."""
    async with hub.db.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(tables.customer).where(C.environment_id == env)
        )).scalar_one())


# --- delete and erase -----------------------------------------------------------------------


_DELETED = {"created": False, "deleted": True, "erased": False, "fields": [], "tags": False,
            "preferences": False, "isTestUser": False}


def _user_tables() -> list[Any]:
    """Every table that stores rows about one user (has environment_id and user_id columns)."""
    return [t for t in tables.metadata.sorted_tables
            if t is not tables.customer and {"environment_id", "user_id"} <= set(t.c.keys())]


async def delete_customer(hub: Hub, env: str, user_id: str, *, erase: bool = False) -> None:
    """Delete the profile; with ``erase`` also every row about the user in every table (GDPR).

    Plugins that keep their own data are told through ``hub_customer_changed`` (``erased``).
    """
    if core.check_user_id(user_id):
        raise NotFound(user_id)
    # An erasure is always announced: a worker may run plugins this process has not loaded.
    announce = erase or bool(hub.pm.hook.hub_customer_changed.get_hookimpls())
    async with transaction(hub) as tx:
        result = await tx.conn.execute(delete(tables.customer).where(
            C.environment_id == env, C.user_id == user_id))
        if not result.rowcount:
            raise NotFound(user_id)
        if erase:
            for table in _user_tables():
                await tx.conn.execute(delete(table).where(
                    table.c.environment_id == env, table.c.user_id == user_id))
        if announce:
            await tx.enqueue("announce_customer_changes",
                             [env, [[user_id, {**_DELETED, "erased": erase}]]],
                             job_id=f"customers:{env}:{uuid.uuid4().hex}")


# --- announcing changes to plugins ----------------------------------------------------------


async def announce_customer_changes(ctx: dict[str, Any], env: str, changed: list[list[Any]]) -> int:
    """Job: call ``hub_customer_changed`` for each changed customer (at least once)."""
    hub: Hub = ctx["hub"]
    user_ids = [user_id for user_id, _ in changed]
    async with hub.db.connect() as conn:
        rows = await conn.execute(_GET.where(C.environment_id == env, C.user_id.in_(user_ids)))
        profiles = {row.user_id: msgspec.to_builtins(customer_from_row(row)) for row in rows}
    for user_id, changes in changed:
        # A deleted customer's id may already name a new profile: never hand that one over.
        found = None if changes.get("deleted") else profiles.get(user_id)
        customer = found or {"userId": user_id}
        await call_hook(hub.pm, "hub_customer_changed", hub=hub,
                        customer={**customer, "environmentId": env}, changes=changes)
    return len(changed)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(announce_customer_changes)
