"""The analytics debugger: events as they are recorded, filtered by name, user and flow.

The page shows the events of the last few minutes, then an htmx poller asks every 2 seconds for
the events after the last one shown (the keyset cursor of :func:`hub.services.analytics.query_events`,
ordered by event time then id). Polling was chosen over server-sent events: each poll is one
indexed query, survives restarts and proxies that cut long responses, and holds no connection
open per staff tab. Events whose own timestamp is already older than the last one shown (custom
events sent late with a past time) are not tailed; reloading the page shows them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery

from hub.core.analytics import AnalyticsError, event_timestamp
from hub.core.clock import now
from hub.services import analytics as analytics_service
from hub_plugins.workbench.web import render, staff_page

Req = Request[Any, Any, Any]

RECENT = timedelta(minutes=5)
SHOWN = 100  # events the page starts with
PAGE = 200  # events per poll at most (the next poll continues)


def _filters(name: str, user: str, flow: str) -> dict[str, Any]:
    return {"name": name.strip(), "user": user.strip(), "flow": flow.strip()}


async def _events(hub: Any, env: str, filters: dict[str, Any], *, cursor: str | None = None,
                  since: Any = None, limit: int = PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """Events after ``cursor`` (or from ``since``), and the cursor after the last of them."""
    names = [n.strip() for n in filters["name"].split(",") if n.strip()]
    page = await analytics_service.query_events(
        hub, env, user_id=filters["user"] or None, names=names, flow_id=filters["flow"] or None,
        start=since if cursor is None else None, cursor=cursor, limit=limit)
    events = page["events"]
    if not events:
        return [], cursor
    last = events[-1]
    return events, page["nextCursor"] or analytics_service.encode_cursor(event_timestamp(last), last["id"])


async def _start(hub: Any, env: str, filters: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The last :data:`SHOWN` events of the last :data:`RECENT`, and the cursor to tail from."""
    since = now() - RECENT
    shown: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        events, after = await _events(hub, env, filters, cursor=cursor, since=since, limit=PAGE)
        shown = (shown + events)[-SHOWN:]
        if after is None or len(events) < PAGE:
            cursor = after
            break
        cursor = after
    if cursor is None:
        # Nothing yet: tail from a cursor just before now (an id below every event id).
        cursor = analytics_service.encode_cursor(since, "0")
    return shown, cursor


def _poll_url(env: str, filters: dict[str, Any], cursor: str) -> str:
    query = {k: v for k, v in filters.items() if v}
    return f"/ui/{env}/analytics/tail?{urlencode({**query, 'after': cursor})}"


@get("/ui/{env:str}/analytics", opt=staff_page("workbench:view"))
async def analytics(request: Req, env: FromPath[str], name: FromQuery[str] = "",
                    user: FromQuery[str] = "", flow: FromQuery[str] = "") -> Response[Any]:
    filters = _filters(name, user, flow)
    events, cursor = await _start(request.app.state.hub, env, filters)
    return render(request, "wb_analytics.html", events=list(reversed(events)), filters=filters,
                  poll=_poll_url(env, filters, cursor), oob=False,
                  recent_minutes=int(RECENT.total_seconds() // 60))


@get("/ui/{env:str}/analytics/tail", opt=staff_page("workbench:view"))
async def tail(request: Req, env: FromPath[str], after: FromQuery[str] = "", name: FromQuery[str] = "",
               user: FromQuery[str] = "", flow: FromQuery[str] = "") -> Response[Any]:
    """The poller's fragment: events after ``after`` (newest first, put at the top of the list
    out of band) and the poller again, with the cursor after them."""
    hub = request.app.state.hub
    filters = _filters(name, user, flow)
    try:
        events, cursor = await _events(hub, env, filters, cursor=after or None, since=now() - RECENT)
    except AnalyticsError:
        # A cursor this page did not give (edited by hand): tail from now on.
        events, cursor = [], analytics_service.encode_cursor(now(), "0")
    return render(request, "wb_analytics_tail.html", events=list(reversed(events)),
                  poll=_poll_url(env, filters, cursor or after), oob=True)


ROUTES = (analytics, tail)
