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
from hub.db import insert_ignore, tables
from hub.hookspecs import hookimpl
from hub.plugins import call_hook
from hub.services.outbox import transaction

if TYPE_CHECKING:
    from hub.app import Hub

C = tables.customer.c
T = tables.customer_tag.c
F = tables.field_definition.c

UPSERT_KEYS = frozenset({"userId", "fields", "tags", "addTags", "removeTags", "preferences",
                         "isTestUser"})


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


def customer_from_row(row: Any) -> core.Customer:
    return core.Customer(
        user_id=row.user_id, fields=row.fields, tags=row.tags,
        preferences=core.merge_preferences(row.preferences, {}), is_test_user=row.is_test_user,
        created_at=row.created_at, updated_at=row.updated_at,
        first_seen_at=row.first_seen_at, last_seen_at=row.last_seen_at,
    )


# --- field definitions ----------------------------------------------------------------------


async def field_types(conn: AsyncConnection, env: str) -> dict[str, str]:
    rows = await conn.execute(select(F.name, F.type).where(F.environment_id == env))
    return {name: type_ for name, type_ in rows.all()}


def field_json(row: Any) -> dict[str, Any]:
    return {"name": row.name, "type": row.type, "label": row.label,
            "description": row.description, "builtin": False}


async def list_fields(hub: Hub, env: str) -> list[dict[str, Any]]:
    builtins = [{"name": n, "type": t, "label": n.capitalize(), "description": "", "builtin": True}
                for n, t in core.BUILTIN_FIELDS.items()]
    async with hub.db.connect() as conn:
        rows = await conn.execute(select(tables.field_definition).where(F.environment_id == env)
                                  .order_by(F.name))
        return builtins + [field_json(r) for r in rows]


async def define_field(hub: Hub, env: str, name: str, type_: str, label: str = "",
                       description: str = "") -> tuple[dict[str, Any], bool]:
    """Declare a custom field; returns (definition, created). Redeclaring a type is a Conflict."""
    issues = core.check_field_definition(name, type_)
    if issues:
        raise core.ProfileError(issues)
    async with hub.db.begin() as conn:
        existing = (await conn.execute(select(tables.field_definition).where(
            F.environment_id == env, F.name == name))).first()
        if existing is not None:
            if existing.type != type_:
                raise Conflict(f"field {name!r} is already defined as {existing.type}")
            return field_json(existing), False
        row = {"environment_id": env, "name": name, "type": type_, "label": label or name,
               "description": description, "created_at": now()}
        await conn.execute(tables.field_definition.insert().values(row))
    return {"name": name, "type": type_, "label": row["label"], "description": description,
            "builtin": False}, True


# --- upsert ---------------------------------------------------------------------------------


def _validate_item(index: int, item: Any, definitions: dict[str, str]
                   ) -> tuple[dict[str, Any] | None, list[FieldIssue]]:
    """Check one upsert item; returns (clean item, issues). Paths are relative to the item."""
    if not isinstance(item, dict):
        return None, [FieldIssue("", "must be an object")]
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
    return (None if issues else clean), issues


def _apply(current: Any | None, item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge an upsert item into the current row; returns (values, what changed)."""
    fields = core.merge_fields(current.fields if current else {}, item.get("fields", {}))
    prefs = core.merge_preferences(current.preferences if current else {},
                                   item.get("preferences", {}))
    tags = list(item["tags"]) if "tags" in item else list(current.tags if current else [])
    tags += [t for t in item.get("addTags", []) if t not in tags]
    tags = [t for t in tags if t not in item.get("removeTags", [])]
    is_test = item.get("isTestUser", current.is_test_user if current else False)
    values = {"fields": fields, "preferences": prefs, "tags": tags, "is_test_user": is_test}
    changes: dict[str, Any] = {"created": current is None}
    if current is None:
        changes.update(fields=sorted(fields), tags=True, preferences=True)
    else:
        changes["fields"] = sorted(k for k in set(fields) | set(current.fields)
                                   if fields.get(k) != current.fields.get(k))
        changes["tags"] = tags != current.tags
        changes["preferences"] = prefs != core.merge_preferences(current.preferences, {})
        changes["isTestUser"] = is_test != current.is_test_user
    return values, changes


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
    index. A second upsert racing to create the same new user is retried once as an update.
    """
    for attempt in (1, 2):
        try:
            return await _upsert_once(hub, env, items)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _upsert_once(hub: Hub, env: str, items: Sequence[Any]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [{} for _ in items]
    valid: dict[str, tuple[int, dict[str, Any]]] = {}
    announce = bool(hub.pm.hook.hub_customer_changed.get_hookimpls())
    async with transaction(hub) as tx:
        conn = tx.conn
        definitions = await field_types(conn, env)
        for index, item in enumerate(items):
            clean, issues = _validate_item(index, item, definitions)
            user_id = clean["userId"] if clean else (item.get("userId") if isinstance(item, dict) else None)
            if clean and user_id in valid:
                issues = [FieldIssue("userId", f"repeats item {valid[user_id][0]} of this batch")]
            if issues:
                results[index] = {
                    "index": index, "userId": user_id if isinstance(user_id, str) else None,
                    "status": "error",
                    "errors": [{"field": f"users[{index}]" + (f".{i.field}" if i.field else ""),
                                "reason": i.reason} for i in issues],
                }
                continue
            assert clean is not None
            valid[clean["userId"]] = (index, clean)
        current = {}
        if valid:
            rows = await conn.execute(select(tables.customer).where(
                C.environment_id == env, C.user_id.in_(list(valid))))
            current = {row.user_id: row for row in rows}
        stamp = now()
        inserts, updates, tag_rows, changed = [], [], [], []
        for user_id, (index, item) in valid.items():
            row = current.get(user_id)
            values, changes = _apply(row, item)
            changed.append([user_id, changes])
            if row is None:
                inserts.append({"environment_id": env, "user_id": user_id, "created_at": stamp,
                                "updated_at": stamp, **values})
            else:
                updates.append({"b_id": row.id, "updated_at": stamp, **values})
                if changes["tags"]:
                    tag_rows.append((row.id, values["tags"]))
            results[index] = {"index": index, "userId": user_id,
                              "status": "created" if row is None else "updated"}
        if inserts:
            created = await conn.execute(
                tables.customer.insert().returning(C.id, C.user_id, C.tags), inserts)
            tag_rows += [(r.id, r.tags) for r in created if r.tags]
        if updates:
            await conn.execute(
                update(tables.customer).where(C.id == bindparam("b_id")).values(
                    fields=bindparam("fields"), preferences=bindparam("preferences"),
                    tags=bindparam("tags"), is_test_user=bindparam("is_test_user"),
                    updated_at=bindparam("updated_at"),
                ).execution_options(synchronize_session=False),
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


async def ensure_customers(conn: AsyncConnection, env: str, user_ids: Sequence[str]) -> dict[str, int]:
    """Create missing profiles for ``user_ids`` (in the caller's transaction); returns row ids."""
    stamp = now()
    unique = list(dict.fromkeys(user_ids))
    if unique:
        await insert_ignore(conn, tables.customer, [
            {"environment_id": env, "user_id": uid, "fields": {}, "tags": [],
             "preferences": dict(core.DEFAULT_PREFERENCES), "is_test_user": False,
             "created_at": stamp, "updated_at": stamp} for uid in unique
        ], ["environment_id", "user_id"])
    rows = await conn.execute(select(C.id, C.user_id).where(
        C.environment_id == env, C.user_id.in_(unique)))
    return {r.user_id: r.id for r in rows}


# --- read -----------------------------------------------------------------------------------

_GET = select(tables.customer)


async def get_customer(hub: Hub, env: str, user_id: str) -> core.Customer:
    async with hub.db.connect() as conn:
        row = (await conn.execute(
            _GET.where(C.environment_id == env, C.user_id == user_id))).first()
    if row is None:
        raise NotFound(user_id)
    return customer_from_row(row)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = text.partition(":")
        if version != "c1":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this API returned") from None


async def list_customers(hub: Hub, env: str, *, tags: Sequence[str] = (),
                         field_filters: dict[str, str] | None = None,
                         is_test_user: bool | None = None, cursor: str | None = None,
                         limit: int = 100) -> dict[str, Any]:
    """One page of customers with every tag in ``tags`` and every ``field == value``."""
    query = select(tables.customer).where(C.environment_id == env)
    if cursor:
        query = query.where(C.id > decode_cursor(cursor))
    for tag in tags:
        query = query.where(exists().where(and_(T.customer_id == C.id, T.tag == tag)))
    if is_test_user is not None:
        query = query.where(C.is_test_user == is_test_user)
    async with hub.db.connect() as conn:
        if field_filters:
            definitions = {**core.BUILTIN_FIELDS, **await field_types(conn, env)}
            for name, raw in field_filters.items():
                query = query.where(field_condition(definitions, name, raw))
        rows = (await conn.execute(query.order_by(C.id).limit(limit + 1))).all()
    page = rows[:limit]
    return {"users": [customer_from_row(r) for r in page],
            "nextCursor": encode_cursor(page[-1].id) if len(rows) > limit else None}


def field_condition(definitions: dict[str, str], name: str, raw: str) -> Any:
    """SQL for ``fields[name] == raw``, with ``raw`` read as the field's declared type."""
    type_ = definitions.get(name)
    if type_ is None:
        raise core.ProfileError([FieldIssue(f"field.{name}", "is not a defined field")])
    column = C.fields[name]
    try:
        if type_ == "number":
            return column.as_float() == float(raw)
        if type_ == "boolean":
            if raw not in ("true", "false"):
                raise ValueError("must be true or false")
            return column.as_boolean() == (raw == "true")
        return column.as_string() == (core.normalize_value("date", raw) if type_ == "date" else raw)
    except ValueError as exc:
        raise core.ProfileError([FieldIssue(f"field.{name}", f"{exc} (field type {type_})")]) from None


async def count_customers(hub: Hub, env: str) -> int:
    async with hub.db.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(tables.customer).where(C.environment_id == env)
        )).scalar_one())


# --- delete and erase -----------------------------------------------------------------------


def _user_tables() -> list[Any]:
    """Every table that stores rows about one user (has environment_id and user_id columns)."""
    return [t for t in tables.metadata.sorted_tables
            if t is not tables.customer and {"environment_id", "user_id"} <= set(t.c.keys())]


async def delete_customer(hub: Hub, env: str, user_id: str, *, erase: bool = False) -> None:
    """Delete the profile; with ``erase`` also every row about the user in every table (GDPR).

    Plugins that keep their own data are told through ``hub_customer_changed`` (``erased``).
    """
    announce = bool(hub.pm.hook.hub_customer_changed.get_hookimpls())
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
                             [env, [[user_id, {"deleted": True, "erased": erase}]]],
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
        customer = profiles.get(user_id) or {"userId": user_id}
        await call_hook(hub.pm, "hub_customer_changed",
                        customer={**customer, "environmentId": env}, changes=changes)
    return len(changed)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(announce_customer_changes)
