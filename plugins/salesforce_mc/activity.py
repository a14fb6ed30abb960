"""The activity Journey Builder talks to, under ``/sfmc/{token}`` (the split under ``.../split``).

No API authentication: the unguessable per-environment token in the URL is the capability, and
``execute`` additionally requires a JWT signed with the installed package's secret. Served:
``config.json`` (generated from the settings), the configuration UI (``index.html``, its script
and icons, static files, no build step), ``flows`` (the published flows and their variables, for
the UI), ``execute`` and the lifecycle calls ``save``, ``validate``, ``publish``, ``stop``.
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub.core.customers import FieldIssue
from hub.logging import get_logger
from hub.services import flows as flow_service
from hub.services import triggers as core_triggers
from hub_plugins.salesforce_mc import arguments as args
from hub_plugins.salesforce_mc import bindings, configjson, facts, signing
from hub_plugins.salesforce_mc.config import SETTINGS, ActivityConfig, by_token

log = get_logger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"index.html": "text/html; charset=utf-8", "activity.js": "text/javascript; charset=utf-8",
          "activity.css": "text/css; charset=utf-8", "icon.png": "image/png", "icon-small.png": "image/png"}
JWT_MEDIA_TYPE = "application/jwt"
OPT = {"auth": "sfmc url token"}
FLOW_FIELD = f"inArguments.{args.FLOW_ARGUMENT}"


def _user_field(config: ActivityConfig) -> str:
    return "keyValue" if config.user_id_from == args.CONTACT_KEY else f"inArguments.{config.user_id_from}"


def problem(status: int, issues: list[FieldIssue], headers: dict[str, str] | None = None) -> Problem:
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return Problem(status, f"{first.field}: {first.reason}{more}",
                   errors=[FieldError(i.field, i.reason) for i in issues], headers=headers)


async def _config(hub: Any, token: str) -> ActivityConfig:
    try:
        found = await by_token(hub, token)
    except ValueError as exc:  # sealed under another HUB_SECRET_KEY: the operator must set it again
        log.error("sfmc_secret_unreadable", error=str(exc),
                  hint="hub sfmc set --env ... (HUB_SECRET_KEY changed)")
        raise Problem(503, "this activity cannot check signatures; try again later") from None
    if found is None:
        raise problem(404, [FieldIssue("path.token",
                                       "no activity has this URL (removed, rotated or mistyped)")])
    return found


def _base_url(request: Request[Any, Any, Any], token: str, kind: str) -> str:
    path = request.url.path
    marker = f"/sfmc/{token}"
    prefix = str(request.base_url).rstrip("/") + path[:path.index(marker)] if marker in path else ""
    public = request.app.state.hub.plugin_settings[SETTINGS].public_base_url
    base = f"{(public or prefix).rstrip('/')}/sfmc/{token}"
    return f"{base}/split" if kind == "split" else base


@cache
def _asset(name: str) -> tuple[bytes, str]:
    body = (STATIC / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _asset_response(request: Request[Any, Any, Any], name: str) -> Response[bytes]:
    if name not in ASSETS:
        raise problem(404, [FieldIssue("path", f"no file {name!r} here")])
    body, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=ASSETS[name], headers=headers)


async def _published_flows(hub: Any, env: str) -> list[dict[str, Any]]:
    """Every published flow that SFMC may start, with its variables (the UI's choices)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await flow_service.list_flows(hub, env, state="published", cursor=cursor, limit=500)
        for flow in page["flows"]:
            try:
                _version, defn = await flow_service.startable_definition(hub, env, flow["flowConfigId"])
            except (flow_service.FlowNotFound, flow_service.FlowNotPublished, flow_service.FlowArchived):
                continue
            found.append({"flowConfigId": flow["flowConfigId"], "name": flow["name"],
                          "sfmcAllowed": defn.allows("sfmc"),
                          "variables": [{"name": v.name, "type": v.type, "required": v.required,
                                         "hasDefault": v.default is not None, "description": v.description}
                                        for v in defn.variables if v.overridable]})
        cursor = page["nextCursor"]
        if cursor is None:
            return found


async def _serve(hub: Any, request: Request[Any, Any, Any], token: str, name: str, kind: str) -> Any:
    config = await _config(hub, token)
    url = _base_url(request, token, kind)
    cors = {"Access-Control-Allow-Origin": "*"}
    if name == "config.json":
        document = configjson.split(url, config) if kind == "split" else configjson.activity(url, config)
        return Response(document, headers=cors)
    if name == "flows":
        return Response({"flows": await _published_flows(hub, config.environment_id)}, headers=cors)
    return _asset_response(request, name)


@get("/sfmc/{token:str}/{name:str}", opt=OPT, tags=["sfmc"], include_in_schema=False)
async def activity_file(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str],
                        name: FromPath[str]) -> Any:
    """``config.json``, the configuration UI and ``flows`` of the custom activity."""
    return await _serve(hub, request, token, name, "activity")


@get("/sfmc/{token:str}/split/{name:str}", opt=OPT, tags=["sfmc"], include_in_schema=False)
async def split_file(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str],
                     name: FromPath[str]) -> Any:
    """``config.json``, the configuration UI and ``flows`` of the decision split."""
    return await _serve(hub, request, token, name, "split")


# --- requests from Journey Builder ----------------------------------------------------------


async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    too_large = problem(413, [FieldIssue("body", f"larger than {limit} bytes (HUB_SFMC_MAX_BODY_BYTES)")])
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unauthorized(reason: str) -> Problem:
    return problem(401, [FieldIssue("body", reason)], headers={"WWW-Authenticate": 'JWT realm="hub-sfmc"'})


async def _body(hub: Any, request: Request[Any, Any, Any], config: ActivityConfig, *, jwt_only: bool
                ) -> dict[str, Any]:
    """The request's payload: a verified JWT, or (lifecycle calls only) plain JSON."""
    raw = await _read_body(request, hub.plugin_settings[SETTINGS].max_body_bytes)
    media = _media_type(request)
    if media == JWT_MEDIA_TYPE:
        try:
            return signing.verify(raw, config.secret)
        except signing.JwtError as exc:
            raise _unauthorized(exc.reason) from None
    if jwt_only:
        raise problem(415, [FieldIssue("header.content-type", f"send {JWT_MEDIA_TYPE}: execute takes the "
                                                              "JWT Journey Builder signs (useJwt: true)")],
                      headers={"Accept-Post": JWT_MEDIA_TYPE})
    if media and media != "application/json" and not media.endswith("+json"):
        raise problem(415, [FieldIssue("header.content-type", f"send application/json or {JWT_MEDIA_TYPE}")])
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise problem(400, [FieldIssue("body", f"malformed JSON: {exc}")]) from None
    if not isinstance(body, dict):
        raise problem(400, [FieldIssue("body", "must be a JSON object")])
    return body


def _trigger_problem(exc: core_triggers.TriggerError, user_field: str) -> Problem:
    if not exc.issues or exc.status in (403, 404, 409):
        return problem(exc.status, [FieldIssue(f"inArguments.{args.FLOW_ARGUMENT}", str(exc))])
    issues = []
    for issue in exc.issues:
        field = issue.field.split(".payload.variables.", 1)
        if len(field) == 2:
            issues.append(FieldIssue(f"inArguments.{field[1]}", issue.reason))
        elif ".target" in issue.field:
            issues.append(FieldIssue(user_field, issue.reason))
        else:
            issues.append(issue)
    return problem(exc.status, issues)


async def _start(hub: Any, config: ActivityConfig, payload: dict[str, Any]) -> dict[str, Any]:
    arguments = args.merge_in_arguments(payload.get("inArguments"))
    flow_id = args.flow_id_of(arguments)
    user_id = args.user_id_of(payload, arguments, config.user_id_from)
    env = config.environment_id
    invocation = args.invocation_id(payload, user_id)
    try:
        version, defn = await flow_service.startable_definition(hub, env, flow_id)
    except flow_service.FlowNotFound:
        raise problem(404, [FieldIssue(FLOW_FIELD, f"no flow {flow_id!r}")]) from None
    except (flow_service.FlowNotPublished, flow_service.FlowArchived) as exc:
        raise problem(409, [FieldIssue(FLOW_FIELD, str(exc))]) from None
    payload_out = {"variables": args.variables_of(defn, arguments), "metadata": args.metadata_of(payload)}
    item = {"flowInvocationId": invocation, "target": {"usersById": [user_id]}, "payload": payload_out}
    started, reachable = await asyncio.gather(
        core_triggers.start_flows(hub, env, flow_id, [item], source="sfmc", definition=(version, defn)),
        facts.reachable(hub, env, user_id))
    return {"flowInvocationId": started[0]["flowInvocationId"], "reachable": reachable}


async def _within(config: ActivityConfig, work: Any) -> Any:
    """Answer within the configured timeout (less a margin for the network): a late answer is a
    failure to Journey Builder anyway, and a 503 lets it retry (the start is idempotent)."""
    seconds = max(0.5, config.timeout_ms / 1000 - 0.5)
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        raise Problem(503, f"not done within the activity's timeout ({config.timeout_ms} ms); retry",
                      headers={"Retry-After": "1"}) from None


@post("/sfmc/{token:str}/execute", opt=OPT, tags=["sfmc"], status_code=200, include_in_schema=False,
      request_max_body_size=None)
async def execute(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str]) -> dict[str, Any]:
    """One contact: start the chosen flow for them; answers the outArguments."""
    config = await _config(hub, token)
    payload = await _body(hub, request, config, jwt_only=True)
    try:
        return dict(await _within(config, _start(hub, config, payload)))
    except args.ArgumentError as exc:
        raise problem(exc.status, exc.issues) from None
    except core_triggers.TriggerError as exc:
        raise _trigger_problem(exc, _user_field(config)) from None


async def _decide(hub: Any, config: ActivityConfig, payload: dict[str, Any]) -> str:
    arguments = args.merge_in_arguments(payload.get("inArguments"))
    user_id = args.user_id_of(payload, arguments, config.user_id_from)
    env = config.environment_id
    flow_id = arguments.get(args.FLOW_ARGUMENT)
    days = _seen_days(arguments.get("seenWithinDays"))
    if isinstance(flow_id, str) and flow_id.strip() and await facts.has_open_card(hub, env, user_id, flow_id):
        return "open_card"
    if await facts.has_push_device(hub, env, user_id):
        return "push_device"
    if await facts.seen_within(hub, env, user_id, days):
        return "seen_recently"
    return "not_reachable"


def _seen_days(value: Any) -> int:
    if value is None or value == "":
        return configjson.DEFAULT_SEEN_DAYS
    try:
        days = int(str(value).strip())
    except ValueError:
        days = 0
    if not 1 <= days <= 3650:
        raise args.ArgumentError([FieldIssue("inArguments.seenWithinDays", "must be a whole number of days "
                                                                          "from 1 to 3650")], 422)
    return days


@post("/sfmc/{token:str}/split/execute", opt=OPT, tags=["sfmc"], status_code=200, include_in_schema=False,
      request_max_body_size=None)
async def split_execute(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str]) -> dict[str, Any]:
    """One contact through the decision split: ``{"branchResult": <outcome>}``."""
    config = await _config(hub, token)
    payload = await _body(hub, request, config, jwt_only=True)
    try:
        return {"branchResult": await _within(config, _decide(hub, config, payload))}
    except args.ArgumentError as exc:
        raise problem(exc.status, exc.issues) from None


# --- lifecycle ------------------------------------------------------------------------------

STATES = {"save": "saved", "validate": "validated", "publish": "published", "stop": "stopped"}


async def _check_activity(hub: Any, env: str, row: Any) -> list[FieldIssue]:
    """Why the stored configuration of a flow activity could not run (empty when it can)."""
    stored = row["arguments"] or {}
    field = f"inArguments.{args.FLOW_ARGUMENT}"
    flow_id = stored.get(args.FLOW_ARGUMENT)
    if not isinstance(flow_id, str) or not flow_id.strip():
        return [FieldIssue(field, "no flow chosen: open the activity in Journey Builder, choose a flow "
                                  "and click Done")]
    try:
        version, defn = await flow_service.startable_definition(hub, env, flow_id)
    except flow_service.FlowNotFound:
        return [FieldIssue(field, f"no flow {flow_id!r} in this environment")]
    except (flow_service.FlowNotPublished, flow_service.FlowArchived) as exc:
        return [FieldIssue(field, str(exc))]
    if not defn.allows("sfmc"):
        return [FieldIssue(field, f"flow {flow_id!r} does not allow SFMC to start it (its triggers)")]
    return args.missing_required(defn, stored)


async def _check_split(hub: Any, env: str, row: Any) -> list[FieldIssue]:
    stored = row["arguments"] or {}
    issues: list[FieldIssue] = []
    flow_id = stored.get(args.FLOW_ARGUMENT)
    if isinstance(flow_id, str) and flow_id.strip():
        try:
            await flow_service.startable_definition(hub, env, flow_id)
        except flow_service.FlowNotFound:
            issues.append(FieldIssue(FLOW_FIELD, f"no flow {flow_id!r} in this environment"))
        except (flow_service.FlowNotPublished, flow_service.FlowArchived):
            pass  # cards of an archived or unpublished flow can still be open
    try:
        _seen_days(stored.get("seenWithinDays"))
    except args.ArgumentError as exc:
        issues += exc.issues
    return issues


async def _lifecycle(hub: Any, request: Request[Any, Any, Any], token: str, action: str, kind: str
                     ) -> dict[str, Any]:
    if action not in STATES:
        raise problem(404, [FieldIssue("path", f"no {action!r} call: {', '.join(STATES)} or execute")])
    config = await _config(hub, token)
    body = await _body(hub, request, config, jwt_only=False)
    env = config.environment_id
    try:
        row = await bindings.record(hub, env, kind, body, STATES[action])
    except args.ArgumentError as exc:
        raise problem(exc.status, exc.issues) from None
    checked = False
    # Journey Builder's own calls carry no arguments; what the configuration UI stored (or a call
    # that carried them) is checked. An activity Hub never saw configured is not blocked here:
    # its execute calls are checked contact by contact.
    if action in ("validate", "publish") and row["arguments"]:
        check = _check_split if kind == "split" else _check_activity
        issues = await check(hub, env, row)
        if issues:
            raise problem(422, issues)
        checked = True
    log.info("sfmc_lifecycle", action=action, kind=kind, environment_id=env,
             activity_object_id=row["activity_object_id"], interaction_id=row["interaction_id"])
    return {**bindings.binding_json(row), "configurationChecked": checked}


@post("/sfmc/{token:str}/{action:str}", opt=OPT, tags=["sfmc"], status_code=200, include_in_schema=False,
      request_max_body_size=None)
async def lifecycle(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str],
                    action: FromPath[str]) -> dict[str, Any]:
    """``save``, ``validate``, ``publish`` and ``stop`` of the activity (plain JSON or JWT)."""
    return await _lifecycle(hub, request, token, action, "activity")


@post("/sfmc/{token:str}/split/{action:str}", opt=OPT, tags=["sfmc"], status_code=200,
      include_in_schema=False, request_max_body_size=None)
async def split_lifecycle(hub: HubDep, request: Request[Any, Any, Any], token: FromPath[str],
                          action: FromPath[str]) -> dict[str, Any]:
    """``save``, ``validate``, ``publish`` and ``stop`` of the decision split."""
    return await _lifecycle(hub, request, token, action, "split")


ROUTES: list[Any] = [activity_file, split_file, execute, split_execute, lifecycle, split_lifecycle]
