"""The routes Marketo calls, under ``/marketo/{env}/``: the service Marketo admins install.

``openapi.json`` (the ``serviceUrl``) is served without authentication, as the SPI requires,
and so are the icons and the provider instructions. Every other call must carry the
environment's API key in ``x-api-key``: it is checked before anything of the body is read,
and a missing or wrong key is a 401 problem document naming ``header.x-api-key``.

``submitAsyncAction`` answers 201 once the batch and its job are committed (:mod:`batches`);
a call it has seen before (same token and batchid) answers 201 again and starts nothing.
"""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from sqlalchemy import func, select

from hub.api.problems import FieldError, Problem, is_json_media_type
from hub.app import HubDep
from hub.core.clock import now
from hub.core.flows import FlowDefinition
from hub.net import UnsafeURL, check_url
from hub.services.flows import FlowArchived, FlowNotFound, FlowNotPublished, startable_definition
from hub_plugins.marketo import batches, config, openapi, service
from hub_plugins.marketo.intake import BatchRefused, plan_batch
from hub_plugins.marketo.tables import batch as batch_table

TAGS = ["marketo service"]
STATIC = Path(__file__).parent / "static"
BASE = "/marketo/{env:str}"
_STATE_KEY = "marketo"


def public_base(hub: Any, request: Request[Any, Any, Any]) -> str:
    """Where Marketo reaches this Hub: HUB_MARKETO_PUBLIC_BASE_URL, else the request's base URL."""
    return (hub.plugin_settings["marketo"].public_base_url or str(request.base_url)).rstrip("/")


def service_base(hub: Any, request: Request[Any, Any, Any], env: str) -> str:
    return f"{public_base(hub, request)}/marketo/{env}"


async def marketo_key_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The route's ``opt["authenticate"]``: the environment's API key in ``x-api-key``."""
    hub = connection.app.state.hub
    env = connection.path_params.get("env", "")
    given = connection.headers.get("x-api-key", "")
    cfg = await config.key_matches(hub, env, given)
    if cfg is None:
        reason = (
            "required: the API key of the environment's Marketo integration"
            if not given
            else "not the API key of this environment's Marketo integration"
        )
        raise Problem(
            401,
            f"header.x-api-key: {reason}",
            errors=[FieldError("header.x-api-key", reason)],
            headers={"WWW-Authenticate": 'ApiKey realm="hub-marketo", header="x-api-key"'},
        )
    connection.scope.setdefault("state", {})[_STATE_KEY] = cfg


AUTH: dict[str, Any] = {"auth": "marketo api key", "authenticate": marketo_key_guard}
PUBLIC: dict[str, Any] = {"auth": "public"}


def _cfg(request: Request[Any, Any, Any]) -> config.MarketoConfig:
    found: config.MarketoConfig = request.scope["state"][_STATE_KEY]
    return found


async def _read_json(request: Request[Any, Any, Any], limit: int) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and not is_json_media_type(media_type):
        reason = f"send application/json, not {media_type}"
        raise Problem(
            415, f"header.content-type: {reason}", errors=[FieldError("header.content-type", reason)]
        )
    too_large = Problem(
        413,
        f"body: larger than {limit} bytes (HUB_MARKETO_MAX_BODY_BYTES)",
        errors=[FieldError("body", f"larger than {limit} bytes (HUB_MARKETO_MAX_BODY_BYTES)")],
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise Problem(
            400,
            "body: required: send a JSON document",
            errors=[FieldError("body", "required: send a JSON document")],
        )
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        reason = "malformed JSON: " + str(exc).removeprefix("JSON is malformed: ")
        raise Problem(400, f"body: {reason}", errors=[FieldError("body", reason)]) from None


# --- the service definition ----------------------------------------------------------------


@get(
    f"{BASE}/openapi.json",
    opt=PUBLIC,
    tags=TAGS,
    include_in_schema=False,
    security=[],
    summary="The service's OpenAPI document: the URL to install in Marketo",
)
async def openapi_document(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    if await config.load(hub, env) is None:
        reason = f"environment {env!r} has no Marketo integration (PUT /v1/{env}/integrations/marketo)"
        raise Problem(404, reason, errors=[FieldError("path.env", reason)])
    settings = hub.plugin_settings["marketo"]
    document = openapi.document(
        service_base(hub, request, env), settings.provider_name, settings.support_contact
    )
    return Response(document, media_type="application/json")


@get(
    f"{BASE}/getServiceDefinition",
    opt=AUTH,
    tags=TAGS,
    include_in_schema=False,
    summary="The flow step's fields, the lead fields Hub needs and those it writes back",
)
async def get_service_definition(
    hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]
) -> dict[str, Any]:
    cfg = _cfg(request)
    flows = await service.offered_flows(hub, env, cfg)
    return service.service_definition(service_base(hub, request, env), flows, cfg)


@get(f"{BASE}/status", opt=AUTH, tags=TAGS, include_in_schema=False, summary="Health of the service")
async def status(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]) -> dict[str, Any]:
    cfg = _cfg(request)
    flows = await service.offered_flows(hub, env, cfg)
    c = batch_table.c
    async with hub.db.connect() as conn:
        failed = (
            await conn.execute(
                select(func.count()).where(
                    c.environment_id == env, c.state == "failed", c.updated_at > now() - timedelta(days=1)
                )
            )
        ).scalar()
    warnings = []
    if not flows:
        warnings.append(
            "no published Hub flow can be started from Marketo: publish one whose triggers allow marketo"
        )
    if failed:
        warnings.append(
            f"{failed} batch callbacks failed in the last 24 hours "
            "(GET /v1/{env}/integrations/marketo/batches)".replace("{env}", env)
        )
    return {"info": [f"{len(flows)} Hub flows offered"], "warnings": warnings, "errors": []}


@post(
    f"{BASE}/getPicklist",
    opt=AUTH,
    tags=TAGS,
    include_in_schema=False,
    status_code=200,
    summary="Choices of a flow-step field: the published flows for flowConfigId",
)
async def get_picklist(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]) -> dict[str, Any]:
    body = await _read_json(request, 1_048_576)
    if not isinstance(body, dict):
        raise Problem(
            400, "body: must be a JSON object", errors=[FieldError("body", "must be a JSON object")]
        )
    for name in ("name", "type"):
        if not isinstance(body.get(name), str):
            raise Problem(400, f"{name}: required string", errors=[FieldError(name, "required string")])
    if body["type"] not in ("flow", "global", "header"):
        raise Problem(
            400,
            "type: must be flow, global or header",
            errors=[FieldError("type", "must be flow, global or header")],
        )
    if body["type"] != "flow":
        return {"choices": []}
    flows = await service.offered_flows(hub, env, _cfg(request))
    return {"choices": service.picklist(flows, body["name"])}


def _icon(name: str) -> Response[bytes]:
    return Response(
        (STATIC / name).read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@get(f"{BASE}/brandIcon", opt=PUBLIC, tags=TAGS, include_in_schema=False, security=[], summary="Brand icon")
async def brand_icon(env: FromPath[str]) -> Response[bytes]:
    return _icon("brand.svg")


@get(
    f"{BASE}/serviceIcon",
    opt=PUBLIC,
    tags=TAGS,
    include_in_schema=False,
    security=[],
    summary="The flow step's icon",
)
async def service_icon(env: FromPath[str]) -> Response[bytes]:
    return _icon("service.svg")


INSTRUCTIONS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Send Hub flow</title></head><body>
<h1>Send Hub flow</h1>
<p>Starts a published Hub flow for each lead of a Smart Campaign and reports each lead's result.</p>
<ol>
<li>In Hub, an operator sets up the integration for environment <code>{env}</code>
(<code>hub marketo set --env {env}</code> or <code>PUT /v1/{env}/integrations/marketo</code>) and gives
you its service URL and API key.</li>
<li>In Marketo Admin &rarr; Service Providers, add the service with the URL, then enter the API key.</li>
<li>Map the lead fields Hub asks for (email) and, when Hub writes back, the incoming fields.</li>
<li>Enable the service. In a Smart Campaign's flow, add <em>Send Hub flow</em>, choose the Hub flow and
fill the variables it needs.</li>
</ol>
<p>Flows must be published in Hub and allow Marketo starts to appear in the list.</p>
</body></html>
"""


@get(
    f"{BASE}/providerInstructions",
    opt=PUBLIC,
    tags=TAGS,
    include_in_schema=False,
    security=[],
    summary="How to set the service up",
)
async def provider_instructions(env: FromPath[str]) -> Response[str]:
    return Response(INSTRUCTIONS.replace("{env}", html.escape(env)), media_type="text/html")


# --- invocations ---------------------------------------------------------------------------


@post(
    f"{BASE}/submitAsyncAction",
    opt=AUTH,
    tags=TAGS,
    include_in_schema=False,
    status_code=201,
    request_max_body_size=None,
    summary="Start a Hub flow for a batch of leads (201 once stored)",
)
async def submit_async_action(
    hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]
) -> dict[str, Any]:
    cfg = _cfg(request)
    settings = hub.plugin_settings["marketo"]
    body = await _read_json(request, settings.max_body_bytes)

    async def flow(flow_id: str) -> FlowDefinition | str:
        if not cfg.offers(flow_id):
            return f"flow {flow_id!r} is not offered to Marketo (the integration's flows list)"
        try:
            _version, defn = await startable_definition(hub, env, flow_id)
        except FlowNotFound:
            return f"no Hub flow {flow_id!r}"
        except (FlowNotPublished, FlowArchived) as exc:
            return str(exc)
        if not defn.allows("marketo"):
            return f"flow {flow_id!r} does not allow Marketo starts (its triggers.marketo is false)"
        return defn

    try:
        plan = await plan_batch(body, cfg, settings.max_leads, flow)
        if not hub.settings.allow_private_urls:
            try:
                await check_url(plan.callback_url, allow_private=False)
            except UnsafeURL as exc:
                raise BatchRefused(400, "callbackUrl", str(exc)) from None
    except BatchRefused as exc:
        raise Problem(
            exc.status, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)]
        ) from None
    created = await batches.accept(hub, env, plan)
    return {"batchId": plan.batch_id, "leads": len(plan.leads), "duplicate": not created}


ROUTES: list[Any] = [
    openapi_document,
    get_service_definition,
    status,
    get_picklist,
    brand_icon,
    service_icon,
    provider_instructions,
    submit_async_action,
]
