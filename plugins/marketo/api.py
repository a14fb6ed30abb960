"""``PUT/GET/DELETE /v1/{env}/integrations/marketo``: an environment's Marketo integration
(docs/marketo.md), and its batches: ``GET .../marketo/batches`` and ``.../batches/{batchId}``.

The answer names ``serviceUrl``, the OpenAPI document to install in Marketo. The API key is
write-only: the answer shows it once, when Hub made it (settings created without one, or
``rotateApiKey``), and never again.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, put
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub_plugins.marketo import batches, config
from hub_plugins.marketo.ssfs import public_base

TAGS = ["marketo"]
READ = {"permission": "marketo:read"}
WRITE = {"permission": "marketo:write"}
PATH = "/v1/{env:str}/integrations/marketo"


class MarketoSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    """``userIdFrom``: the lead's id (default) or email becomes the Hub user id; ``writeBack``:
    lead fields Hub writes back in the callback; ``flows``: the flowConfigIds offered (null:
    every published flow that allows Marketo starts). ``apiKey`` sets the key Marketo sends
    (Hub makes one when the settings are created without it); ``rotateApiKey`` makes a new one."""

    userIdFrom: str = "leadId"
    writeBack: list[str] = msgspec.field(default_factory=list)
    flows: list[str] | None = None
    apiKey: str | None = None
    rotateApiKey: bool = False


class MarketoSettingsOut(msgspec.Struct, omit_defaults=True):
    environmentId: str
    serviceUrl: str
    userIdFrom: str
    writeBack: list[str]
    flows: list[str] | None
    createdAt: str | None
    updatedAt: str | None
    apiKeyUpdatedAt: str | None
    apiKey: str | None = None


class CallbackState(msgspec.Struct):
    status: str
    attempts: int
    lastStatusCode: int | None
    lastError: str | None
    nextAttemptAt: str | None


class Batch(msgspec.Struct):
    batchId: str
    marketoBatchId: str | None
    campaignId: int
    munchkinId: str
    state: str
    leads: int
    leadsDone: int
    leadsStarted: int
    leadsFailed: int
    error: str | None
    callback: CallbackState
    createdAt: str | None
    updatedAt: str | None
    completedAt: str | None


class BatchDetail(Batch):
    results: list[dict[str, Any]]


class BatchPage(msgspec.Struct):
    batches: list[Batch]
    nextCursor: str | None


def service_url(base: str, env: str) -> str:
    return f"{base}/marketo/{env}/openapi.json"


def _out(
    request: Request[Any, Any, Any], hub: Any, env: str, shown: dict[str, Any], api_key: str | None = None
) -> MarketoSettingsOut:
    return msgspec.convert(
        {**shown, "serviceUrl": service_url(public_base(hub, request), env), "apiKey": api_key},
        MarketoSettingsOut,
    )


def _not_found(env: str) -> Problem:
    reason = f"environment {env} has no Marketo integration"
    return Problem(404, reason, errors=[FieldError("path", reason)])


@put(
    PATH,
    opt=WRITE,
    tags=TAGS,
    status_code=200,
    summary="Set the environment's Marketo integration (the API key is shown once, when Hub makes it)",
)
async def put_marketo(
    hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str], data: JSONBody[MarketoSettingsIn]
) -> Response[MarketoSettingsOut]:
    try:
        shown, api_key, created = await config.save(
            hub,
            env,
            api_key=data.apiKey,
            rotate_api_key=data.rotateApiKey,
            user_id_from=data.userIdFrom,
            write_back=data.writeBack,
            flows=data.flows,
        )
    except config.ConfigError as exc:
        raise Problem(422, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)]) from None
    return Response(
        _out(request, hub, env, shown, api_key),
        status_code=201 if created else 200,
        headers={"Cache-Control": "no-store"},
    )


@get(PATH, opt=READ, tags=TAGS, summary="The environment's Marketo integration (never the API key)")
async def get_marketo(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]) -> MarketoSettingsOut:
    shown = await config.get_view(hub, env)
    if shown is None:
        raise _not_found(env)
    return _out(request, hub, env, shown)


@delete(
    PATH,
    opt=WRITE,
    tags=TAGS,
    status_code=204,
    summary="Remove the environment's Marketo integration (Marketo's calls are refused from now on)",
)
async def delete_marketo(hub: HubDep, env: FromPath[str]) -> None:
    if not await config.remove(hub, env):
        raise _not_found(env)


@get(f"{PATH}/batches", opt=READ, tags=TAGS, summary="Batches Marketo sent, newest first")
async def list_batches(
    hub: HubDep,
    env: FromPath[str],
    cursor: Annotated[str | None, QueryParameter()] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> BatchPage:
    try:
        page = await batches.list_batches(
            hub, env, cursor=cursor, limit=min(limit, hub.settings.max_page_size)
        )
    except ValueError as exc:
        raise Problem(422, f"query.cursor: {exc}", errors=[FieldError("query.cursor", str(exc))]) from None
    return msgspec.convert(page, BatchPage)


@get(
    f"{PATH}/batches/{{batch_id:str}}",
    opt=READ,
    tags=TAGS,
    summary="One batch: progress, each lead's result and the callback's attempts",
)
async def get_batch(hub: HubDep, env: FromPath[str], batch_id: FromPath[str]) -> BatchDetail:
    try:
        return msgspec.convert(await batches.get_batch(hub, env, batch_id), BatchDetail)
    except batches.BatchNotFound:
        reason = f"no batch {batch_id!r}"
        raise Problem(404, reason, errors=[FieldError("path.batchId", reason)]) from None


ROUTES: list[Any] = [put_marketo, get_marketo, delete_marketo, list_batches, get_batch]
