"""Customer Center: finding a customer (``GET /ui/{env}/customers``, ``customer_center:view``).

One search box (and a field picker); what is typed is read by
:func:`hub_plugins.workbench.search.read`. The form is a plain GET form (it works without
JavaScript); with htmx the results follow the typing (``input changed delay:300ms, search``):
an htmx request targeting ``#search-results`` gets the results fragment alone and the URL is
pushed, so a reload or a shared link shows the same search. Pressing Enter submits the form
with ``go=1``: when the typed text is a user id of the environment, or the search finds exactly
one customer, the answer is a redirect to that customer's page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Redirect

from hub_plugins.workbench import search as search_service
from hub_plugins.workbench.web import is_htmx, render, staff_page

RESULTS_ID = "search-results"
MAX_QUERY = 500


def customer_path(env: str, user_id: str) -> str:
    return f"/ui/{quote(env, safe='')}/customers/{quote(user_id, safe='')}"


def search_path(env: str, q: str, field: str, page: int = 1) -> str:
    query = {"q": q, "field": field if field != "any" else "", "page": page if page > 1 else ""}
    query = {k: v for k, v in query.items() if v != ""}
    return f"/ui/{quote(env, safe='')}/customers" + (f"?{urlencode(query)}" if query else "")


def _page_number(raw: str | None) -> int:
    if raw and raw.isascii() and raw.isdigit():
        return min(max(int(raw), 1), search_service.MAX_PAGE)
    return 1


@get("/ui/{env:str}/customers", opt=staff_page("customer_center:view"))
async def search(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    params = request.query_params
    raw = (params.get("q") or "")[:MAX_QUERY]
    picked = params.get("field") or "any"
    fields = await search_service.searchable_fields(hub, env)
    wanted = search_service.read(raw, picked, fields)
    wanted = search_service.Search(wanted.field, wanted.value, _page_number(params.get("page")))
    error, status = None, 200
    result = search_service.Result([], False, None)
    try:
        result = await search_service.search(hub, env, wanted, fields)
    except search_service.SearchError as exc:
        error, status = str(exc), 422
    fragment = is_htmx(request) and request.headers.get("hx-target") == RESULTS_ID \
        and request.headers.get("hx-history-restore-request") != "true"
    if params.get("go") and not fragment and wanted.value and wanted.page == 1:
        only = result.rows[0]["user_id"] if len(result.rows) == 1 and not result.has_next else None
        target = result.exact or only
        if target is not None:
            return Redirect(customer_path(env, target), status_code=303)
    picked = picked if picked == "user_id" or picked in fields else "any"
    context = {
        "q": raw, "picked": picked, "fields": fields, "wanted": wanted, "result": result,
        "error": error, "results_id": RESULTS_ID,
        "customer_path": lambda user_id: customer_path(env, user_id),
        "next_path": search_path(env, raw, picked, wanted.page + 1) if result.has_next else None,
        "previous_path": search_path(env, raw, picked, wanted.page - 1) if wanted.page > 1 else None,
        "first": (wanted.page - 1) * search_service.PAGE_SIZE + 1,
    }
    headers = {"Vary": "HX-Request, HX-Target"}
    template = "search_results.html" if fragment else "search.html"
    return render(request, template, status=status, headers=headers, **context)


ROUTES = (search,)
