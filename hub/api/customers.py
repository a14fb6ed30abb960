"""Customers API: ``/v1/{env}/users`` and ``/v1/{env}/fields`` (PROTOCOLS.md §1)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.api.problems import FieldError, Problem, invalid
from hub.app import HubDep
from hub.core.customers import Customer, ProfileError
from hub.hookspecs import hookimpl
from hub.services import customers as service

TAGS = ["customers"]


class UpsertUsers(msgspec.Struct, forbid_unknown_fields=True):
    """Items are validated one by one, so one bad item does not reject the batch.

    Each item: ``{"userId": str, "fields"?: {name: value|null}, "tags"?: [str] (replaces),
    "addTags"?: [str], "removeTags"?: [str], "preferences"?: {"timezone"?, "notificationsEnabled"?,
    "notificationWindows"?}, "isTestUser"?: bool}``.
    """

    users: list[Any]


class ItemError(msgspec.Struct):
    field: str
    reason: str


class UpsertResult(msgspec.Struct, omit_defaults=True):
    index: int
    status: str
    userId: str | None = None
    errors: list[ItemError] = []


class UpsertUsersResponse(msgspec.Struct):
    results: list[UpsertResult]
    created: int
    updated: int
    failed: int


class UserPage(msgspec.Struct, rename="camel"):
    users: list[Customer]
    next_cursor: str | None


class FieldDefinitionIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    type: str
    label: str = ""
    description: str = ""


class FieldDefinition(msgspec.Struct):
    name: str
    type: str
    label: str
    description: str
    builtin: bool


class FieldList(msgspec.Struct):
    fields: list[FieldDefinition]


def _no_customer(env: str, user_id: str) -> Problem:
    detail = f"no customer {user_id!r} in environment {env!r}"
    return Problem(404, detail, errors=[FieldError("path.userId", detail)])


def _profile_problem(exc: ProfileError) -> Problem:
    return Problem(422, str(exc), errors=[FieldError(i.field, i.reason) for i in exc.issues])


@put("/v1/{env:str}/users", opt={"permission": "users:write"}, tags=TAGS, status_code=200,
     summary="Create or update customers in a batch")
async def upsert_users(hub: HubDep, env: FromPath[str], data: JSONBody[UpsertUsers]) -> UpsertUsersResponse:
    """Upsert up to ``HUB_MAX_BATCH_SIZE`` customers. Valid items are saved; each invalid item
    is reported in ``results`` with the field and the reason, and the others still apply."""
    limit = hub.settings.max_batch_size
    if len(data.users) > limit:
        raise Problem(413, f"users: at most {limit} items per request (HUB_MAX_BATCH_SIZE)",
                      errors=[FieldError("users", f"at most {limit} items per request")])
    if not data.users:
        raise invalid("users", "must hold at least one item")
    result = await service.upsert_customers(hub, env, data.users)
    return msgspec.convert(result, UpsertUsersResponse)


@get("/v1/{env:str}/users/{user_id:str}", opt={"permission": "users:read"}, tags=TAGS,
     summary="Get one customer")
async def get_user(hub: HubDep, env: FromPath[str], user_id: FromPath[str]) -> Customer:
    """The customer's profile; 404 (naming ``path.userId``) when the environment has no such user."""
    try:
        return await service.get_customer(hub, env, user_id)
    except service.NotFound:
        raise _no_customer(env, user_id) from None


@get("/v1/{env:str}/users", opt={"permission": "users:read"}, tags=TAGS,
     summary="List customers, filtered by tags and profile fields")
async def list_users(
    request: Request[Any, Any, Any], hub: HubDep, env: FromPath[str],
    tag: Annotated[list[str] | None, QueryParameter(description="Customers with every tag given")] = None,
    is_test_user: Annotated[bool | None, QueryParameter(name="isTestUser")] = None,
    cursor: Annotated[str | None, QueryParameter(description="nextCursor of the previous page")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> UserPage:
    """Filter on a profile field with ``field.<name>=<value>`` (equality, typed by the field)."""
    filters = {key[6:]: value for key, value in request.query_params.items()
               if key.startswith("field.")}
    unknown = [k for k in request.query_params
               if not k.startswith("field.") and k not in ("tag", "isTestUser", "cursor", "limit")]
    if unknown:
        raise invalid(f"query.{unknown[0]}", "unknown query parameter (tag, field.<name>, "
                                             "isTestUser, cursor, limit)")
    try:
        page = await service.list_customers(hub, env, tags=tag or [], field_filters=filters,
                                            is_test_user=is_test_user, cursor=cursor,
                                            limit=min(limit, hub.settings.max_page_size))
    except ProfileError as exc:
        raise _profile_problem(exc) from None
    return UserPage(users=page["users"], next_cursor=page["nextCursor"])


@delete("/v1/{env:str}/users/{user_id:str}", opt={"permission": "users:write"}, tags=TAGS,
        status_code=204, summary="Delete a customer (erase=true: every record of them)")
async def delete_user(hub: HubDep, env: FromPath[str], user_id: FromPath[str],
                      erase: Annotated[bool, QueryParameter(description=(
                          "Also delete every card, event and record about the customer (GDPR "
                          "erasure); plugins are told to erase theirs."))] = False) -> None:
    try:
        await service.delete_customer(hub, env, user_id, erase=erase)
    except service.NotFound:
        raise _no_customer(env, user_id) from None


@get("/v1/{env:str}/fields", opt={"permission": "fields:read"}, tags=TAGS,
     summary="List profile field definitions")
async def list_fields(hub: HubDep, env: FromPath[str]) -> FieldList:
    """Built-in fields first, then the environment's custom fields by name."""
    return msgspec.convert({"fields": await service.list_fields(hub, env)}, FieldList)


@post("/v1/{env:str}/fields", opt={"permission": "fields:write"}, tags=TAGS, status_code=201,
      summary="Define a custom profile field")
async def define_field(hub: HubDep, env: FromPath[str],
                       data: JSONBody[FieldDefinitionIn]) -> Response[FieldDefinition]:
    """Types: text, number, date, boolean. 201 when created; defining an existing field with the
    same type changes nothing and answers 200; with another type it is a 409."""
    try:
        definition, created = await service.define_field(hub, env, data.name, data.type,
                                                         data.label, data.description)
    except ProfileError as exc:
        raise _profile_problem(exc) from None
    except service.Conflict as exc:
        raise Problem(409, str(exc), errors=[FieldError("type", str(exc))]) from None
    return Response(msgspec.convert(definition, FieldDefinition), status_code=201 if created else 200)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (upsert_users, get_user, list_users, delete_user, list_fields, define_field):
        register(handler)
