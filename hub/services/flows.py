"""Flows and their versions: create, edit the draft, publish, archive, clone, export, import.

A flow (``flowConfigId``) has at most one **draft** version and any number of frozen ones. Creating
a flow makes version 1 a draft; editing changes only the draft (or opens a new one, numbered
after the latest version); publishing freezes the draft: it becomes ``published``, the version
published before it becomes ``archived``. Running instances name the version they started on, so
a version that has been published never changes again, which lets :func:`definition_at` keep
parsed definitions in memory.

Definitions are parsed and checked by :mod:`hub.core.flows` against the plugin step types of
the Hub doing the work; they are stored as :func:`hub.core.flows.to_json` gives them back.
"""

from __future__ import annotations

import base64
import re
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core import flows as core
from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.core.flow_steps import PUSH_PLATFORMS
from hub.core.flows import FlowDefinition
from hub.db import lock_for_write, tables

if TYPE_CHECKING:
    from hub.app import Hub

F = tables.flow.c
V = tables.flow_version.c

FLOW_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Path segments of the flows API that a flowConfigId would shadow.
RESERVED_IDS = frozenset({"schema", "import"})
EXPORT_FORMAT_VERSION = 1
State = Literal["draft", "published", "archived"]
STATES: tuple[State, ...] = ("draft", "published", "archived")
OnWrite = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]] | None
"""Called by a change in its own transaction, after its writes, with what it did
(``flowConfigId`` and, depending on the change, ``version``, ``archived``, ``customerCenterEnabled``):
what it writes (an audit entry) commits or rolls back with the change."""


# --- errors ---------------------------------------------------------------------------------


class FlowNotFound(LookupError):
    """No such flow (or no such version of it) in this environment."""


class FlowNotPublished(LookupError):
    """The flow has no published version, so it cannot be started."""


class FlowArchived(ValueError):
    """The flow is archived: it cannot be started or edited until it is unarchived."""


class FlowConflict(ValueError):
    """A flow with this flowConfigId already exists in the environment."""


class EnvironmentNotFound(LookupError):
    """No such environment."""


class NoDraft(ValueError):
    """Publishing needs a draft, and the flow has none."""


class InvalidFlow(ValueError):
    """The request is invalid; ``issues`` name every problem (``definition.steps[0].type``...)."""

    def __init__(self, issues: list[FieldIssue]):
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues


# --- definitions ----------------------------------------------------------------------------


def step_types(hub: Hub) -> dict[str, Mapping[str, Any]]:
    """The plugin step types a definition may use, name to the JSON Schema of their options."""
    return {name: st.schema for name, st in hub.registry.step_types.items()}


def push_platforms(hub: Hub) -> list[str]:
    """The push platforms plugins added (``hub_register_push_platforms``), which push steps and
    card templates' pushes may name besides ``ios``, ``android`` and ``web``."""
    return sorted(hub.registry.push_platforms)


def check_flow_id(value: Any, field: str = "id") -> list[FieldIssue]:
    """Issues with a client-given flowConfigId (none when it is usable)."""
    if not isinstance(value, str) or not FLOW_ID.match(value):
        return [FieldIssue(field, "must be 1-64 lowercase letters, digits, '-' or '_', starting "
                                  "with a letter or digit")]
    if value in RESERVED_IDS:
        return [FieldIssue(field, f"{value!r} is reserved (it names an API route)")]
    return []


def new_flow_id() -> str:
    return "fl_" + secrets.token_hex(8)


def parse(raw: Any, types: Mapping[str, Mapping[str, Any]], field: str = "definition",
          platforms: Sequence[str] = ()) -> FlowDefinition:
    """Parse a definition (``platforms``: the push platforms plugins added); :class:`InvalidFlow`
    names each issue under ``field``."""
    if not isinstance(raw, dict):
        raise InvalidFlow([FieldIssue(field, "must be an object")])
    try:
        return core.parse_definition(raw, types, platforms)
    except core.FlowError as exc:
        raise InvalidFlow([FieldIssue(f"{field}.{i.field}" if i.field not in ("", "definition") else field,
                                      i.reason) for i in exc.issues]) from None


def _stored_step_types(stored: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Step types for re-reading a stored definition: it was checked when saved, so the plugin
    types it names accept any options (their plugin may even be gone since)."""
    names = {s.get("type") for s in stored.get("steps", []) if isinstance(s, dict)}
    return {name: {} for name in names if isinstance(name, str) and name not in core.STEP_TYPES}


def _stored_push_platforms(stored: Mapping[str, Any]) -> list[str]:
    """The push platforms a stored definition names: it was checked when saved, so they are
    accepted again (their plugin may be gone since; its devices then get no push)."""
    named: set[str] = set()
    for step in stored.get("steps", []):
        if isinstance(step, dict) and step.get("type") == "push" and isinstance(step.get("platforms"), list):
            named.update(p for p in step["platforms"] if isinstance(p, str))
    for template in stored.get("cardTemplates", []):
        push = template.get("push") if isinstance(template, dict) else None
        if isinstance(push, dict) and isinstance(push.get("extraPlatforms"), list):
            named.update(p for p in push["extraPlatforms"] if isinstance(p, str))
    return sorted(named - set(PUSH_PLATFORMS))


def read_stored(stored: Mapping[str, Any]) -> FlowDefinition:
    """The :class:`FlowDefinition` of a stored (already checked) definition."""
    return core.parse_definition(dict(stored), _stored_step_types(stored), _stored_push_platforms(stored))


# Parsed published versions, per database engine (so two Hubs in one process, as in tests,
# never share entries): they never change, and parsing is the costly part of reading one.
DEFINITION_CACHE_SIZE = 256
_caches: weakref.WeakKeyDictionary[Engine, OrderedDict[tuple[str, str, int], FlowDefinition]] = \
    weakref.WeakKeyDictionary()


def _cache(conn: AsyncConnection) -> OrderedDict[tuple[str, str, int], FlowDefinition]:
    engine = conn.sync_engine
    cache = _caches.get(engine)
    if cache is None:
        cache = _caches[engine] = OrderedDict()
    return cache


async def definition_at(conn: AsyncConnection, env: str, flow_id: str, version: int) -> FlowDefinition:
    """The definition of one version of a flow; :class:`FlowNotFound` if there is no such version.

    Versions that have been published are immutable and kept in a small LRU cache.
    """
    cache = _cache(conn)
    key = (env, flow_id, version)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    row = (await conn.execute(select(V.state, V.definition).where(
        V.environment_id == env, V.flow_id == flow_id, V.version == version))).first()
    if row is None:
        raise FlowNotFound(f"flow {flow_id!r} has no version {version} in environment {env!r}")
    defn = read_stored(row.definition)
    if row.state != "draft":
        cache[key] = defn
        while len(cache) > DEFINITION_CACHE_SIZE:
            cache.popitem(last=False)
    return defn


async def published_definition(conn: AsyncConnection, env: str, flow_id: str) -> tuple[int, FlowDefinition]:
    """(version, definition) of the version a new run of the flow starts on.

    Raises :class:`FlowNotFound`, :class:`FlowArchived` or :class:`FlowNotPublished`.
    """
    row = (await conn.execute(select(F.published_version, F.archived_at).where(
        F.environment_id == env, F.id == flow_id))).first()
    if row is None:
        raise FlowNotFound(f"no flow {flow_id!r} in environment {env!r}")
    if row.archived_at is not None:
        raise FlowArchived(f"flow {flow_id!r} is archived")
    if row.published_version is None:
        raise FlowNotPublished(f"flow {flow_id!r} has no published version")
    return row.published_version, await definition_at(conn, env, flow_id, row.published_version)


_PUBLISHED = select(F.published_version, F.archived_at).where(
    F.environment_id == bindparam("env"), F.id == bindparam("flow_id"))


async def startable_definition(hub: Hub, env: str, flow_id: str) -> tuple[int, FlowDefinition]:
    """:func:`published_definition` for the trigger path: the flow row is read on the database's
    fast read path and the parsed version comes from the cache; a connection is taken only to
    parse a version this process has not seen yet."""
    rows = await hub.db.read(_PUBLISHED, {"env": env, "flow_id": flow_id})
    if not rows:
        raise FlowNotFound(f"no flow {flow_id!r} in environment {env!r}")
    row = rows[0]
    if row["archived_at"] is not None:
        raise FlowArchived(f"flow {flow_id!r} is archived")
    version = row["published_version"]
    if version is None:
        raise FlowNotPublished(f"flow {flow_id!r} has no published version")
    cached = _caches.get(hub.db.engine.sync_engine, {}).get((env, flow_id, version))
    if cached is not None:
        return version, cached
    async with hub.db.connect() as conn:
        return version, await definition_at(conn, env, flow_id, version)


# --- shapes ---------------------------------------------------------------------------------


def flow_state(row: Any) -> State:
    """``archived`` when archived, else ``published`` once a version is published, else ``draft``."""
    if row.archived_at is not None:
        return "archived"
    return "published" if row.published_version is not None else "draft"


def flow_json(row: Any) -> dict[str, Any]:
    """The API summary of a ``hub_flow`` row."""
    return {
        "flowConfigId": row.id, "name": row.name, "description": row.description,
        "state": flow_state(row), "publishedVersion": row.published_version,
        "draftVersion": row.draft_version, "customerCenterEnabled": row.customer_center_enabled,
        "createdAt": row.created_at, "updatedAt": row.updated_at, "archivedAt": row.archived_at,
    }


def version_json(row: Any, *, definition: bool = True) -> dict[str, Any]:
    """The API shape of a ``hub_flow_version`` row."""
    out = {"version": row.version, "state": row.state, "createdAt": row.created_at,
           "publishedAt": row.published_at}
    if definition:
        out["definition"] = row.definition
    return out


async def _flow_row(conn: AsyncConnection, env: str, flow_id: str, *, lock: bool = False) -> Any:
    query = select(tables.flow).where(F.environment_id == env, F.id == flow_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise FlowNotFound(f"no flow {flow_id!r} in environment {env!r}")
    return row


async def _version_row(conn: AsyncConnection, env: str, flow_id: str, version: int | None) -> Any:
    if version is None:
        return None
    return (await conn.execute(select(tables.flow_version).where(
        V.environment_id == env, V.flow_id == flow_id, V.version == version))).first()


async def _detail(conn: AsyncConnection, env: str, flow_id: str) -> dict[str, Any]:
    row = await _flow_row(conn, env, flow_id)
    draft = await _version_row(conn, env, flow_id, row.draft_version)
    published = await _version_row(conn, env, flow_id, row.published_version)
    return {**flow_json(row), "draft": version_json(draft) if draft else None,
            "published": version_json(published) if published else None}


async def _locked_for_edit(conn: AsyncConnection, env: str, flow_id: str) -> Any:
    await lock_for_write(conn)
    row = await _flow_row(conn, env, flow_id, lock=True)
    if row.archived_at is not None:
        raise FlowArchived(f"flow {flow_id!r} is archived: unarchive it to edit it")
    return row


# --- reading --------------------------------------------------------------------------------


async def get_flow(hub: Hub, env: str, flow_id: str) -> dict[str, Any]:
    """The flow's summary with its ``draft`` and ``published`` versions (or null)."""
    async with hub.db.connect() as conn:
        return await _detail(conn, env, flow_id)


def encode_cursor(last: str | int) -> str:
    return base64.urlsafe_b64encode(f"f1|{last}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "query.cursor") -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, last = text.partition("|")
        if version != "f1" or not last:
            raise ValueError
        return last
    except (ValueError, UnicodeDecodeError):
        raise InvalidFlow([FieldIssue(field, "not a cursor this API returned")]) from None


async def list_flows(hub: Hub, env: str, *, state: State | None = None, cursor: str | None = None,
                     limit: int = 100) -> dict[str, Any]:
    """One page of flow summaries by flowConfigId; ``state`` keeps one state only."""
    query = select(tables.flow).where(F.environment_id == env)
    if cursor:
        query = query.where(F.id > decode_cursor(cursor))
    if state == "archived":
        query = query.where(F.archived_at.is_not(None))
    elif state is not None:
        query = query.where(F.archived_at.is_(None))
        query = query.where(F.published_version.is_not(None) if state == "published"
                            else F.published_version.is_(None))
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(F.id).limit(limit + 1))).all()
    page = rows[:limit]
    return {"flows": [flow_json(r) for r in page],
            "nextCursor": encode_cursor(page[-1].id) if len(rows) > limit else None}


async def list_versions(hub: Hub, env: str, flow_id: str, *, cursor: str | None = None,
                        limit: int = 100) -> dict[str, Any]:
    """One page of the flow's versions, newest first, without their definitions."""
    query = select(tables.flow_version).where(V.environment_id == env, V.flow_id == flow_id)
    if cursor:
        last = decode_cursor(cursor)
        if not last.isdigit():
            raise InvalidFlow([FieldIssue("query.cursor", "not a cursor this API returned")])
        query = query.where(V.version < int(last))
    async with hub.db.connect() as conn:
        await _flow_row(conn, env, flow_id)
        rows = (await conn.execute(query.order_by(V.version.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {"versions": [version_json(r, definition=False) for r in page],
            "nextCursor": encode_cursor(page[-1].version) if len(rows) > limit else None}


async def get_version(hub: Hub, env: str, flow_id: str, version: int) -> dict[str, Any]:
    """One version with its definition; :class:`FlowNotFound` for an unknown flow or version."""
    async with hub.db.connect() as conn:
        await _flow_row(conn, env, flow_id)
        row = await _version_row(conn, env, flow_id, version)
    if row is None:
        raise FlowNotFound(f"flow {flow_id!r} has no version {version}")
    return version_json(row)


# --- writing --------------------------------------------------------------------------------


async def create_flow(hub: Hub, env: str, definition: Any, flow_id: str | None = None, *,
                      on_write: OnWrite = None) -> dict[str, Any]:
    """Create a flow whose version 1 is a draft of ``definition``; returns its detail.

    Raises :class:`InvalidFlow` (bad id or definition) or :class:`FlowConflict` (id taken).
    """
    issues = check_flow_id(flow_id) if flow_id is not None else []
    try:
        defn = parse(definition, step_types(hub), platforms=push_platforms(hub))
    except InvalidFlow as exc:
        issues += exc.issues
    if issues:
        raise InvalidFlow(issues)
    flow_id = flow_id or new_flow_id()
    stamp = now()
    try:
        async with hub.db.begin() as conn:
            await conn.execute(tables.flow.insert().values(
                environment_id=env, id=flow_id, name=defn.name, description=defn.description,
                published_version=None, draft_version=1, customer_center_enabled=False,
                created_at=stamp, updated_at=stamp, archived_at=None))
            await conn.execute(tables.flow_version.insert().values(
                environment_id=env, flow_id=flow_id, version=1, state="draft",
                definition=core.to_json(defn), created_at=stamp, published_at=None))
            if on_write is not None:
                await on_write(conn, {"flowConfigId": flow_id, "version": 1})
    except IntegrityError:
        async with hub.db.connect() as conn:
            if (await conn.execute(select(F.id).where(F.environment_id == env, F.id == flow_id))).first():
                raise FlowConflict(f"flow {flow_id!r} already exists in environment {env!r}") from None
            if not (await conn.execute(select(tables.environment.c.id).where(
                    tables.environment.c.id == env))).first():
                raise EnvironmentNotFound(f"environment {env!r} does not exist") from None
        raise
    return await get_flow(hub, env, flow_id)


async def _write_draft(conn: AsyncConnection, env: str, row: Any, defn: FlowDefinition) -> int:
    """Replace the draft of the (locked) flow ``row``, or open a new one after the latest version."""
    stamp = now()
    stored = core.to_json(defn)
    if row.draft_version is not None:
        await conn.execute(update(tables.flow_version).where(
            V.environment_id == env, V.flow_id == row.id, V.version == row.draft_version,
        ).values(definition=stored))
        version = row.draft_version
    else:
        latest = (await conn.execute(select(func.max(V.version)).where(
            V.environment_id == env, V.flow_id == row.id))).scalar() or 0
        version = latest + 1
        await conn.execute(tables.flow_version.insert().values(
            environment_id=env, flow_id=row.id, version=version, state="draft",
            definition=stored, created_at=stamp, published_at=None))
    await conn.execute(update(tables.flow).where(F.environment_id == env, F.id == row.id).values(
        draft_version=version, name=defn.name, description=defn.description, updated_at=stamp))
    return version


async def update_draft(hub: Hub, env: str, flow_id: str, definition: Any, *,
                       on_write: OnWrite = None) -> dict[str, Any]:
    """Replace the flow's draft (opening one if it has none); what runs live does not change.

    Raises :class:`FlowNotFound`, :class:`FlowArchived` or :class:`InvalidFlow`.
    """
    defn = parse(definition, step_types(hub), platforms=push_platforms(hub))
    async with hub.db.begin() as conn:
        row = await _locked_for_edit(conn, env, flow_id)
        version = await _write_draft(conn, env, row, defn)
        if on_write is not None:
            await on_write(conn, {"flowConfigId": flow_id, "version": version})
    return await get_flow(hub, env, flow_id)


async def publish(hub: Hub, env: str, flow_id: str, *, on_write: OnWrite = None) -> dict[str, Any]:
    """Freeze the draft as the published version; the previous one becomes ``archived``.

    The draft is checked again against the step types installed now. Raises
    :class:`FlowNotFound`, :class:`FlowArchived`, :class:`NoDraft` or :class:`InvalidFlow`.
    """
    async with hub.db.begin() as conn:
        row = await _locked_for_edit(conn, env, flow_id)
        if row.draft_version is None:
            raise NoDraft(f"flow {flow_id!r} has no draft to publish")
        draft = await _version_row(conn, env, flow_id, row.draft_version)
        defn = parse(draft.definition, step_types(hub), platforms=push_platforms(hub))
        stamp = now()
        if row.published_version is not None:
            await conn.execute(update(tables.flow_version).where(
                V.environment_id == env, V.flow_id == flow_id, V.version == row.published_version,
            ).values(state="archived"))
        await conn.execute(update(tables.flow_version).where(
            V.environment_id == env, V.flow_id == flow_id, V.version == row.draft_version,
        ).values(state="published", published_at=stamp, definition=core.to_json(defn)))
        await conn.execute(update(tables.flow).where(F.environment_id == env, F.id == flow_id).values(
            published_version=row.draft_version, draft_version=None, name=defn.name,
            description=defn.description, customer_center_enabled=bool(defn.triggers.customer_center),
            updated_at=stamp))
        if on_write is not None:
            await on_write(conn, {"flowConfigId": flow_id, "version": row.draft_version})
    return await get_flow(hub, env, flow_id)


async def set_archived(hub: Hub, env: str, flow_id: str, archived: bool, *,
                       on_write: OnWrite = None) -> dict[str, Any]:
    """Archive (it can no longer be started or edited) or unarchive a flow; idempotent."""
    async with hub.db.begin() as conn:
        await lock_for_write(conn)
        row = await _flow_row(conn, env, flow_id, lock=True)
        if (row.archived_at is not None) != archived:
            stamp = now()
            await conn.execute(update(tables.flow).where(F.environment_id == env, F.id == flow_id)
                               .values(archived_at=stamp if archived else None, updated_at=stamp))
        if on_write is not None:
            await on_write(conn, {"flowConfigId": flow_id, "archived": archived})
    return await get_flow(hub, env, flow_id)


async def set_customer_center(hub: Hub, env: str, flow_id: str, enabled: bool, *,
                              on_write: OnWrite = None) -> dict[str, Any]:
    """Offer the flow in the Customer Center, or stop offering it; returns its detail.

    The Customer Center lists flows whose row flag ``customerCenterEnabled`` is on, and a start
    from it is checked against the published definition's ``triggers.customerCenter``. So the
    draft's ``triggers.customerCenter`` is set too (a draft is opened from the published version
    when there is none and its value differs), which keeps the choice at the next publish, and
    the flag turns on only when the published version allows the trigger (or nothing is published
    yet: publishing sets the flag from the draft). Raises :class:`FlowNotFound` or
    :class:`FlowArchived`.
    """
    async with hub.db.begin() as conn:
        row = await _locked_for_edit(conn, env, flow_id)
        published = await _version_row(conn, env, flow_id, row.published_version)
        published_allows = published is not None and bool(
            published.definition.get("triggers", {}).get("customerCenter", False))
        draft = await _version_row(conn, env, flow_id, row.draft_version)
        source = draft if draft is not None else published
        if source is not None and (draft is not None or published_allows != enabled):
            definition = dict(source.definition)
            definition["triggers"] = {**definition.get("triggers", {}), "customerCenter": enabled}
            await _write_draft(conn, env, row, read_stored(definition))
        flag = enabled and (published is None or published_allows)
        await conn.execute(update(tables.flow).where(F.environment_id == env, F.id == flow_id)
                           .values(customer_center_enabled=flag))
        if on_write is not None:
            await on_write(conn, {"flowConfigId": flow_id, "customerCenterEnabled": flag})
    return await get_flow(hub, env, flow_id)


async def _latest_definition(conn: AsyncConnection, env: str, flow_id: str) -> tuple[int, dict[str, Any]]:
    """(version, stored definition) of the draft, or else of the published version."""
    row = await _flow_row(conn, env, flow_id)
    version = row.draft_version if row.draft_version is not None else row.published_version
    found = await _version_row(conn, env, flow_id, version)
    if found is None:  # only when every version was removed by hand
        raise FlowNotFound(f"flow {flow_id!r} has no version to copy")
    return found.version, dict(found.definition)


async def clone_flow(hub: Hub, env: str, flow_id: str, new_id: str | None = None,
                     name: str | None = None, *, on_write: OnWrite = None) -> dict[str, Any]:
    """A new flow whose draft copies the source's draft (or else its published) definition.

    ``name`` renames the copy (default: the source's name followed by ``(copy)``).
    """
    async with hub.db.connect() as conn:
        _version, definition = await _latest_definition(conn, env, flow_id)
    definition["name"] = name if name is not None else f"{definition.get('name', '')} (copy)"
    return await create_flow(hub, env, definition, new_id, on_write=on_write)


async def export_flow(hub: Hub, env: str, flow_id: str, version: int | None = None) -> dict[str, Any]:
    """``{"formatVersion": 1, "flowConfigId", "name", "definition"}`` of the draft (or else the
    published version), or of ``version``."""
    async with hub.db.connect() as conn:
        if version is None:
            _version, definition = await _latest_definition(conn, env, flow_id)
        else:
            await _flow_row(conn, env, flow_id)
            row = await _version_row(conn, env, flow_id, version)
            if row is None:
                raise FlowNotFound(f"flow {flow_id!r} has no version {version}")
            definition = row.definition
    return {"formatVersion": EXPORT_FORMAT_VERSION, "flowConfigId": flow_id,
            "name": definition.get("name", ""), "definition": definition}


def check_export(document: Any) -> tuple[str, Any]:
    """(flowConfigId, definition) of an export document; :class:`InvalidFlow` if it is not one."""
    if not isinstance(document, dict):
        raise InvalidFlow([FieldIssue("body", "must be a flow export document (an object)")])
    issues = [FieldIssue(k or "body", f"unknown field {k!r} (unknown fields are rejected)")
              for k in document if k not in ("formatVersion", "flowConfigId", "name", "definition")]
    if document.get("formatVersion") != EXPORT_FORMAT_VERSION:
        issues.append(FieldIssue("formatVersion", f"must be {EXPORT_FORMAT_VERSION}"))
    issues += check_flow_id(document.get("flowConfigId"), "flowConfigId")
    if "definition" not in document:
        issues.append(FieldIssue("definition", "required"))
    if issues:
        raise InvalidFlow(issues)
    return document["flowConfigId"], document["definition"]


async def import_flow(hub: Hub, env: str, document: Any, *, replace: bool = False,
                      on_write: OnWrite = None) -> tuple[dict[str, Any], bool]:
    """Create a draft flow from an export document; returns (detail, created).

    When the flowConfigId exists: :class:`FlowConflict`, or with ``replace`` its draft is replaced.
    """
    flow_id, definition = check_export(document)
    try:
        return await create_flow(hub, env, definition, flow_id, on_write=on_write), True
    except FlowConflict:
        if not replace:
            raise
    return await update_draft(hub, env, flow_id, definition, on_write=on_write), False


async def apply_flow(hub: Hub, env: str, definition: Any, flow_id: str | None = None, *,
                     publish_it: bool = True) -> tuple[dict[str, Any], bool]:
    """Create the flow, or replace its draft when ``flow_id`` exists; then publish it.

    What ``hub flows apply`` does. Returns (detail, created).
    """
    try:
        detail, created = await create_flow(hub, env, definition, flow_id), True
    except FlowConflict:
        assert flow_id is not None
        detail, created = await update_draft(hub, env, flow_id, definition), False
    if publish_it:
        detail = await publish(hub, env, detail["flowConfigId"])
    return detail, created


