"""The Workbench's customers list: filters by tag, test user and one profile field, cursor pages;
each customer links to their Customer Center page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery

from hub.core.customers import ProfileError
from hub.services import customers as customer_service
from hub_plugins.workbench.web import render, staff_page

Req = Request[Any, Any, Any]


@get("/ui/{env:str}/workbench/customers", opt=staff_page("workbench:view"))
async def customers(request: Req, env: FromPath[str], tag: FromQuery[str] = "",
                    test: FromQuery[str] = "", field: FromQuery[str] = "", value: FromQuery[str] = "",
                    cursor: FromQuery[str | None] = None) -> Response[Any]:
    hub = request.app.state.hub
    filters = {"tag": tag.strip(), "test": test if test in ("yes", "no") else "", "field": field.strip(),
               "value": value}
    errors: list[dict[str, str]] = []
    if filters["field"] and not value:
        errors.append({"path": "value", "reason": "give the value the field must have"})
    page: dict[str, Any] = {"users": [], "nextCursor": None}
    if not errors:
        try:
            page = await customer_service.list_customers(
                hub, env, tags=[filters["tag"]] if filters["tag"] else [],
                field_filters={filters["field"]: value} if filters["field"] else None,
                is_test_user={"yes": True, "no": False}.get(filters["test"]), cursor=cursor or None, limit=50)
        except ProfileError as exc:
            errors = [{"path": _param(i.field), "reason": i.reason} for i in exc.issues]
    fields = await customer_service.list_fields(hub, env)
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "wb_customers.html", status=422 if errors else 200, customers=page["users"],
                  next_cursor=page["nextCursor"], filters=filters, errors=errors, fields=fields, query=query)


def _param(field: str) -> str:
    """The form field a service issue (``query.tag``, ``query.field.plan``) is about."""
    if field.startswith("query.field."):
        return "field"
    return field.removeprefix("query.")


ROUTES = (customers,)
