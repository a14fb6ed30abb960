"""The flow page: the draft's JSON in an editor checked by the flow service, a readable view with
card previews, versions, and the actions (save, publish, test send, clone, archive, export).

Every action needs ``workbench:edit`` in the environment and writes an audit entry; reading the
flow, its versions and its export needs ``workbench:view``. Actions answer htmx with the page's
``#wb-flow`` fragment (422 with the issues when the service refuses), plain forms with the page.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery

from hub.services import customers as customer_service
from hub.services import flows as flow_service
from hub.services import triggers as trigger_service
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.wb_flows import (
    audit,
    issues_of,
    parse_json,
    pretty,
    readable,
    recorder,
    share_token,
)
from hub_plugins.workbench.web import SECURITY_HEADERS, RedirectTo, current_staff, is_htmx, render, staff_page

Req = Request[Any, Any, Any]

EDIT = staff_page("workbench:edit")
VIEW = staff_page("workbench:view")


class _Missing(Exception):
    pass


async def _detail(hub: Any, env: str, flow_id: str) -> dict[str, Any]:
    try:
        return await flow_service.get_flow(hub, env, flow_id)
    except flow_service.FlowNotFound:
        raise _Missing() from None


def _not_found(request: Req, message: str) -> Response[Any]:
    return render(request, "wb_not_found.html", status=404, message=message)


async def flow_page(request: Req, env: str, flow_id: str, *, version: int | None = None,
                    text: str | None = None, errors: list[dict[str, str]] | None = None,
                    message: str = "", status: int = 200, test: dict[str, Any] | None = None,
                    detail: dict[str, Any] | None = None) -> Response[Any]:
    """The flow page (or, for htmx, its ``#wb-flow`` fragment) showing the draft, else the
    published version, or ``version`` read-only."""
    hub = request.app.state.hub
    member = current_staff(request)
    try:
        flow = detail or await _detail(hub, env, flow_id)
    except _Missing:
        return _not_found(request, f"There is no flow {flow_id!r} in {env}.")
    shown = flow["draft"] or flow["published"]
    if version is not None and (shown is None or shown["version"] != version):
        try:
            shown = await flow_service.get_version(hub, env, flow_id, version)
        except flow_service.FlowNotFound:
            return _not_found(request, f"Flow {flow_id!r} has no version {version}.")
    definition = shown["definition"] if shown else {}
    is_draft = shown is not None and shown["state"] == "draft"
    can_edit = member.can("workbench:edit", env)
    versions = (await flow_service.list_versions(hub, env, flow_id, limit=50))["versions"]
    history = await staff_service.audit_log(hub, env, target=f"flow:{flow_id}", limit=20)
    context = {
        "flow": flow, "shown": shown, "definition_text": text if text is not None else pretty(definition),
        "errors": errors or [], "message": message, "test": test, "view": readable(definition),
        "editable": can_edit and flow["state"] != "archived" and (is_draft or version is None),
        "can_edit": can_edit, "versions": versions, "history": history,
        "share": _share_url(request, env, flow_id, shown["version"]) if shown else "",
        "test_users": await _test_user_count(hub, env) if can_edit and flow["publishedVersion"] else "",
    }
    template = "flow_body.html" if is_htmx(request) else "flow.html"
    return render(request, template, status=status, **context)


def _share_url(request: Req, env: str, flow_id: str, version: int) -> str:
    token = share_token(request.app.state.hub, env, flow_id, version)
    return f"{str(request.base_url).rstrip('/')}/ui/share/{token}"


async def _test_user_count(hub: Any, env: str, limit: int = 1000) -> str:
    page = await customer_service.list_customers(hub, env, is_test_user=True, limit=limit)
    return f"{limit}+" if page["nextCursor"] else str(len(page["users"]))


@get("/ui/{env:str}/flows/{flow_id:str}", opt=VIEW)
async def flow(request: Req, env: FromPath[str], flow_id: FromPath[str],
               version: FromQuery[int | None] = None) -> Response[Any]:
    return await flow_page(request, env, flow_id, version=version)


@post("/ui/{env:str}/flows/{flow_id:str}/draft", opt=EDIT, request_max_body_size=2_000_000)
async def save_draft(request: Req, env: FromPath[str], flow_id: FromPath[str]) -> Response[Any]:
    """Replace the draft with the editor's JSON; the service's issues come back by path."""
    hub = request.app.state.hub
    text = str((await request.form()).get("definition", ""))
    definition, errors = parse_json(text)
    if not errors:
        try:
            detail = await flow_service.update_draft(
                hub, env, flow_id, definition,
                on_write=recorder(current_staff(request), env, "flow.draft_saved"))
        except flow_service.FlowNotFound as exc:
            return _not_found(request, str(exc))
        except (flow_service.InvalidFlow, flow_service.FlowArchived) as exc:
            errors = issues_of(exc)
        else:
            return await flow_page(request, env, flow_id, detail=detail,
                                   message=f"Draft v{detail['draftVersion']} saved.")
    return await flow_page(request, env, flow_id, text=text, errors=errors, status=422)


@post("/ui/{env:str}/flows/{flow_id:str}/publish", opt=EDIT)
async def publish(request: Req, env: FromPath[str], flow_id: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    try:
        detail = await flow_service.publish(hub, env, flow_id,
                                            on_write=recorder(current_staff(request), env, "flow.published"))
    except flow_service.FlowNotFound as exc:
        return _not_found(request, str(exc))
    except (flow_service.InvalidFlow, flow_service.FlowArchived, flow_service.NoDraft) as exc:
        return await flow_page(request, env, flow_id, errors=issues_of(exc), status=422)
    version = detail["publishedVersion"]
    return await flow_page(request, env, flow_id, detail=detail, message=f"Version {version} published.")


@post("/ui/{env:str}/flows/{flow_id:str}/test", opt=EDIT, request_max_body_size=200_000)
async def test_send(request: Req, env: FromPath[str], flow_id: FromPath[str]) -> Response[Any]:
    """Start the published version for every test user (source ``test``), with the form's variables."""
    hub = request.app.state.hub
    text = str((await request.form()).get("variables", "")).strip() or "{}"
    variables, errors = parse_json(text)
    if not errors and not isinstance(variables, dict):
        errors = [{"path": "variables", "reason": "must be a JSON object of variable: value"}]
    if not errors:
        try:
            invocation = await trigger_service.start_invocation(
                hub, env, flow_id, target={"allTestUsers": True}, variables=variables, source="test",
                test=True, metadata={"workbench": current_staff(request).email})
        except trigger_service.TriggerError as exc:
            if exc.status == 404:
                return _not_found(request, str(exc))
            errors = [{"path": i.field.removeprefix("flows[0]."), "reason": i.reason} for i in exc.issues] \
                or [{"path": "", "reason": str(exc)}]
        else:
            await audit(hub, current_staff(request), env, "flow.test_sent", flow_id,
                        {"invocation": invocation["flowInvocationId"], "version": invocation["flowVersion"]})
            return await flow_page(request, env, flow_id, test={"invocation": invocation, "variables": text},
                                   message="Test send started.")
    failed = {"invocation": None, "variables": text, "errors": errors}
    return await flow_page(request, env, flow_id, test=failed, status=422)


@get("/ui/{env:str}/flows/{flow_id:str}/test/{invocation_id:str}", opt=VIEW)
async def test_status(request: Req, env: FromPath[str], flow_id: FromPath[str],
                      invocation_id: FromPath[str]) -> Response[Any]:
    """How far a test send got: the fragment polls itself until the fan-out completed."""
    try:
        invocation = await trigger_service.get_invocation(request.app.state.hub, env, invocation_id)
    except trigger_service.InvocationNotFound:
        return _not_found(request, f"No invocation {invocation_id!r}.")
    if invocation["flowConfigId"] != flow_id:
        return _not_found(request, f"Invocation {invocation_id!r} is not of flow {flow_id!r}.")
    return render(request, "flow_test_status.html", invocation=invocation, flow_id=flow_id)


@post("/ui/{env:str}/flows/{flow_id:str}/clone", opt=EDIT, status_code=303)
async def clone(request: Req, env: FromPath[str], flow_id: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    form = await request.form()
    new_id = str(form.get("id", "")).strip() or None
    name = str(form.get("name", "")).strip() or None
    try:
        detail = await flow_service.clone_flow(
            hub, env, flow_id, new_id, name,
            on_write=recorder(current_staff(request), env, "flow.cloned", {"from": flow_id}))
    except flow_service.FlowNotFound as exc:
        return _not_found(request, str(exc))
    except flow_service.InvalidFlow as exc:
        return await flow_page(request, env, flow_id, errors=[
            {"path": "clone." + i["path"], "reason": i["reason"]} for i in issues_of(exc)], status=422)
    except flow_service.FlowConflict as exc:
        return await flow_page(request, env, flow_id, errors=[{"path": "clone.id", "reason": str(exc)}],
                               status=422)
    raise RedirectTo(f"/ui/{env}/flows/{detail['flowConfigId']}")


@post("/ui/{env:str}/flows/{flow_id:str}/archive", opt=EDIT)
async def archive(request: Req, env: FromPath[str], flow_id: FromPath[str]) -> Response[Any]:
    """Archive (``archived=true``) or unarchive the flow."""
    hub = request.app.state.hub
    archived = (await request.form()).get("archived") == "true"
    try:
        action = "flow.archived" if archived else "flow.unarchived"
        detail = await flow_service.set_archived(hub, env, flow_id, archived,
                                                 on_write=recorder(current_staff(request), env, action))
    except flow_service.FlowNotFound as exc:
        return _not_found(request, str(exc))
    return await flow_page(request, env, flow_id, detail=detail,
                           message="Flow archived." if archived else "Flow unarchived.")


@get("/ui/{env:str}/flows/{flow_id:str}/export", opt=VIEW)
async def export(request: Req, env: FromPath[str], flow_id: FromPath[str],
                 version: FromQuery[int | None] = None) -> Response[Any]:
    """The export document (as ``hub flows export`` and the API give it), as a download."""
    try:
        document = await flow_service.export_flow(request.app.state.hub, env, flow_id, version)
    except flow_service.FlowNotFound as exc:
        return _not_found(request, str(exc))
    name = f"{flow_id}{f'-v{version}' if version else ''}.json"
    return Response(json.dumps(document, indent=2, ensure_ascii=False), media_type="application/json",
                    headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})


ROUTES = (flow, save_draft, publish, test_send, test_status, clone, archive, export)
