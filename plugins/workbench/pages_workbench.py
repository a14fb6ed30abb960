"""Workbench pages: the flows list (state filter, the Customer Center switch, new flow, import).

The other Workbench pages live in ``wb_*`` modules; :data:`ROUTES` gathers them all.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from hub.services import flows as flow_service
from hub_plugins.workbench import wb_analytics, wb_customers, wb_editor, wb_share
from hub_plugins.workbench.wb_flows import issues_of, parse_json, recorder
from hub_plugins.workbench.web import RedirectTo, current_staff, is_htmx, render, staff_page

Req = Request[Any, Any, Any]

STATES = ("draft", "published", "archived")


def new_definition(name: str) -> dict[str, Any]:
    """The definition a new flow starts with: one card, then the end."""
    return {"name": name, "description": "",
            "variables": [{"name": "message", "type": "string", "default": "Hello from Hub"}],
            "cardTemplates": [{"id": "hello", "name": name, "elements": [
                {"type": "headline", "text": name},
                {"type": "text", "text": "{{variables.message}}"},
                {"type": "button", "label": "OK", "action": "dismiss"}]}],
            "steps": [{"id": "show", "type": "card", "template": "hello", "next": "done"},
                      {"id": "done", "type": "end"}]}


async def _list_page(request: Req, env: str, state: str | None, cursor: str | None,
                     *, status: int = 200, form: dict[str, Any] | None = None) -> Response[Any]:
    hub = request.app.state.hub
    chosen = state if state in STATES else None
    try:
        page = await flow_service.list_flows(hub, env, state=chosen, cursor=cursor, limit=100)  # type: ignore[arg-type]
    except flow_service.InvalidFlow:
        page = await flow_service.list_flows(hub, env, state=chosen, limit=100)  # type: ignore[arg-type]
    member = current_staff(request)
    return render(request, "flows.html", status=status, flows=page["flows"], next_cursor=page["nextCursor"],
                  state=chosen, states=STATES, can_edit=member.can("workbench:edit", env),
                  form=form or {"name": "", "id": "", "errors": [], "import_errors": []})


@get("/ui/{env:str}/flows", opt=staff_page("workbench:view"))
async def flows_list(request: Req, env: FromPath[str],
                     flow_state: Annotated[str | None, QueryParameter(name="state")] = None,
                     cursor: FromQuery[str | None] = None) -> Response[Any]:
    return await _list_page(request, env, flow_state, cursor)


@post("/ui/{env:str}/flows", opt=staff_page("workbench:edit"), status_code=303)
async def create_flow(request: Req, env: FromPath[str]) -> Response[Any]:
    """A new flow from the list's form: its name and, optionally, its flowConfigId."""
    hub = request.app.state.hub
    form = await request.form()
    name = str(form.get("name", "")).strip()
    flow_id = str(form.get("id", "")).strip() or None
    errors: list[dict[str, str]] = []
    if not name:
        errors.append({"path": "name", "reason": "a flow needs a name"})
    else:
        try:
            detail = await flow_service.create_flow(
                hub, env, new_definition(name), flow_id,
                on_write=recorder(current_staff(request), env, "flow.created", {"name": name}))
        except flow_service.InvalidFlow as exc:
            errors = issues_of(exc)
        except flow_service.FlowConflict as exc:
            errors = [{"path": "id", "reason": str(exc)}]
        else:
            raise RedirectTo(f"/ui/{env}/flows/{detail['flowConfigId']}")
    return await _list_page(request, env, None, None, status=422,
                            form={"name": name, "id": flow_id or "", "errors": errors, "import_errors": []})


@post("/ui/{env:str}/flows/import", opt=staff_page("workbench:edit"), status_code=303,
      request_max_body_size=2_000_000)
async def import_flow(request: Req, env: FromPath[str]) -> Response[Any]:
    """An export document (uploaded file or pasted text) as a new flow, or as the new draft of
    the flow it names when ``replace`` is ticked."""
    hub = request.app.state.hub
    form = await request.form()
    upload = form.get("file")
    text = ""
    if upload is not None and not isinstance(upload, str):
        text = (await upload.read()).decode("utf-8", errors="replace")
    if not text.strip():
        text = str(form.get("document", ""))
    replace = form.get("replace") == "on"
    document, errors = parse_json(text) if text.strip() else (None, [
        {"path": "file", "reason": "choose an export file (or paste its JSON)"}])
    if not errors:
        try:
            detail, _created = await flow_service.import_flow(
                hub, env, document, replace=replace,
                on_write=recorder(current_staff(request), env, "flow.imported", {"replace": replace}))
        except flow_service.InvalidFlow as exc:
            errors = issues_of(exc)
        except flow_service.FlowConflict as exc:
            errors = [{"path": "flowConfigId",
                       "reason": f"{exc}; tick “replace the draft” to import over it"}]
        except flow_service.FlowArchived as exc:
            errors = [{"path": "flowConfigId", "reason": str(exc)}]
        else:
            raise RedirectTo(f"/ui/{env}/flows/{detail['flowConfigId']}")
    return await _list_page(request, env, None, None, status=422,
                            form={"name": "", "id": "", "errors": [], "import_errors": errors})


@post("/ui/{env:str}/flows/{flow_id:str}/customer-center", opt=staff_page("workbench:edit"))
async def toggle_customer_center(request: Req, env: FromPath[str],
                                 flow_id: FromPath[str]) -> Response[Any]:
    """Switch whether the Customer Center offers the flow (see ``set_customer_center``)."""
    hub = request.app.state.hub
    form = await request.form()
    enabled = form.get("enabled") == "true"
    error = ""
    try:
        action = "flow.customer_center_enabled" if enabled else "flow.customer_center_disabled"
        detail = await flow_service.set_customer_center(
            hub, env, flow_id, enabled, on_write=recorder(current_staff(request), env, action))
    except flow_service.FlowNotFound as exc:
        return render(request, "wb_not_found.html", status=404, message=str(exc))
    except flow_service.FlowArchived as exc:
        detail, error = await flow_service.get_flow(hub, env, flow_id), str(exc)
    if not is_htmx(request):
        raise RedirectTo(f"/ui/{env}/flows")
    return render(request, "flow_row.html", status=409 if error else 200, flow=detail, can_edit=True,
                  error=error, wanted=enabled)


@get("/ui/{env:str}/flows/schema.json", opt=staff_page("workbench:view"))
async def flow_schema(request: Req, env: FromPath[str]) -> dict[str, Any]:
    """The JSON Schema of a definition, as the API serves it at ``/v1/{env}/flows/schema``."""
    from hub.core import flows as core

    hub = request.app.state.hub
    return core.json_schema(flow_service.step_types(hub), flow_service.push_platforms(hub))


ROUTES = (flows_list, create_flow, import_flow, toggle_customer_center, flow_schema,
          *wb_editor.ROUTES, *wb_share.ROUTES, *wb_customers.ROUTES, *wb_analytics.ROUTES)
