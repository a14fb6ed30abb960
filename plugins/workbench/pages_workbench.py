"""Workbench pages: flows."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from hub.services import flows as flow_service
from hub_plugins.workbench.web import render, staff_page


@get("/ui/{env:str}/flows", opt=staff_page("workbench:view"))
async def flows_list(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    page = await flow_service.list_flows(request.app.state.hub, env, limit=500)
    return render(request, "flows.html", flows=page["flows"])


ROUTES = (flows_list,)
