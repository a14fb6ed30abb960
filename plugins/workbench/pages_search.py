"""Customer Center: searching customers."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from hub.services import customers as customer_service
from hub_plugins.workbench.web import render, staff_page


@get("/ui/{env:str}/customers", opt=staff_page("customer_center:view"))
async def search(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    page = await customer_service.list_customers(request.app.state.hub, env, limit=50)
    return render(request, "customer_search.html", customers=page["users"])


ROUTES = (search,)
