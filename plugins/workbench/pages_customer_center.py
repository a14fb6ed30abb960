"""Customer Center pages: one customer's profile, cards and analytics, sending them a flow, and
the audit log.

- ``GET /ui/{env}/customers/{user_id}`` (``customer_center:view``): the profile, the cards of one
  state (``?state=``, ``active`` by default) in one stream container (``?container=``,
  ``default``), previewed by the JavaScript SDK's ``renderPreview``; the customer's analytics and
  the audit entries about them. An htmx request targeting ``#cc-cards`` gets only the cards.
- ``GET /ui/{env}/customers/{user_id}/events?cursor=``: older analytics events (a page, or the
  rows alone for htmx).
- ``GET|POST /ui/{env}/customers/{user_id}/send`` (``customer_center:edit``): the send form and
  the send; a sent flow redirects to the customer page with ``?sent=<invocation id>``, which
  shows the confirmation and refreshes the cards until the flow's card is there.
- ``GET /ui/{env}/audit?before=`` (``workbench:admin`` or ``customer_center:edit``): every audit
  entry of the environment, newest first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath

from hub.core.analytics import AnalyticsError
from hub.services import cards as card_service
from hub.services import customers as customer_service
from hub.services import triggers
from hub_plugins.workbench import cc_data, cc_send
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.web import (
    Forbidden,
    current_staff,
    is_htmx,
    render,
    staff_page,
    template_environment,
)

AUDIT_PAGE = 50
POLL_TRIES = 30  # the cards refresh every 2 s for a minute at most while a sent flow runs

template_environment().filters.setdefault("cc_when", cc_data.when)


def customer_url(env: str, user_id: str, **query: Any) -> str:
    path = f"/ui/{quote(env, safe='')}/customers/{quote(user_id, safe='')}"
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return path + (f"?{urlencode(query)}" if query else "")


async def _customer(request: Request[Any, Any, Any], env: str, user_id: str) -> Any:
    try:
        return await customer_service.get_customer(request.app.state.hub, env, user_id)
    except customer_service.NotFound:
        return None


def _missing(request: Request[Any, Any, Any], user_id: str) -> Response[Any]:
    return render(request, "cc_missing.html", status=404, user_id=user_id)


async def _cards_context(request: Request[Any, Any, Any], env: str, user_id: str) -> dict[str, Any]:
    hub = request.app.state.hub
    query = request.query_params
    state = query.get("state") or "active"
    state = state if state in cc_data.STATES else "active"
    containers = await card_service.list_containers(hub, env)
    container = query.get("container") or "default"
    if container not in {c["id"] for c in containers}:
        container = "default"
    awaiting = query.get("awaiting") or query.get("sent")
    tries = int(query.get("tries", "0")) if query.get("tries", "0").isdigit() else POLL_TRIES
    poll = None
    if awaiting and tries < POLL_TRIES and await _still_running(hub, env, user_id, awaiting):
        poll = customer_url(
            env, user_id, state=state, container=container, awaiting=awaiting, tries=tries + 1
        )
    cursor = query.get("cursor") or None
    try:
        page = await cc_data.customer_cards(hub, env, user_id, state, container, cursor)
    except ValueError:  # a cursor that is not one of ours: start from the newest
        cursor = None
        page = await cc_data.customer_cards(hub, env, user_id, state, container)
    return {
        "user_id": user_id,
        "state": state,
        "states": cc_data.STATES,
        "container": container,
        "containers": containers,
        "cards": page["cards"],
        "cursor": cursor,
        "older_url": customer_url(env, user_id, state=state, container=container, cursor=page["nextCursor"])
        if page["nextCursor"] else None,
        "poll": poll,
        "tabs": [
            {"state": s, "url": customer_url(env, user_id, state=s, container=container)}
            for s in cc_data.STATES
        ],
        "self_url": customer_url(env, user_id, state=state, container=container),
    }


async def _still_running(hub: Any, env: str, user_id: str, invocation_id: str) -> bool:
    """Whether a sent flow has yet to show its card: no card of its invocation yet and the
    invocation still pending or running."""
    cards = await card_service.list_cards(hub, env, user_id=user_id, invocation_id=invocation_id, limit=1)
    if cards["cards"]:
        return False
    try:
        invocation = await triggers.get_invocation(hub, env, invocation_id)
    except triggers.InvocationNotFound:
        return False
    return invocation["status"] in ("pending", "running")


@get("/ui/{env:str}/customers/{user_id:str}", opt=staff_page("customer_center:view"))
async def customer_page(
    request: Request[Any, Any, Any], env: FromPath[str], user_id: FromPath[str]
) -> Response[Any]:
    customer = await _customer(request, env, user_id)
    if customer is None:
        return _missing(request, user_id)
    cards = await _cards_context(request, env, user_id)
    if is_htmx(request) and request.headers.get("hx-target") == "cc-cards":
        return render(request, "cc_cards.html", **cards)
    hub = request.app.state.hub
    member = current_staff(request)
    sent = None
    sent_id = request.query_params.get("sent")
    if sent_id:
        try:
            invocation = await triggers.get_invocation(hub, env, sent_id)
            if invocation["target"].get("usersById") == [user_id]:
                sent = invocation
        except triggers.InvocationNotFound:
            sent = None
    fields = await customer_service.list_fields(hub, env)
    return render(
        request,
        "customer.html",
        customer=customer,
        sent=sent,
        can_send=member.can("customer_center:edit", env),
        field_labels={f["name"]: f.get("label") or f["name"] for f in fields},
        events=await cc_data.customer_events(hub, env, user_id, None),
        events_url=customer_url(env, user_id) + "/events",
        audit=await staff_service.audit_log(hub, env, target=user_id, limit=20),
        **cards,
    )


@get("/ui/{env:str}/customers/{user_id:str}/events", opt=staff_page("customer_center:view"))
async def customer_events(
    request: Request[Any, Any, Any], env: FromPath[str], user_id: FromPath[str]
) -> Response[Any]:
    customer = await _customer(request, env, user_id)
    if customer is None:
        return _missing(request, user_id)
    try:
        events = await cc_data.customer_events(
            request.app.state.hub, env, user_id, request.query_params.get("cursor")
        )
    except AnalyticsError:
        return render(
            request,
            "cc_missing.html",
            status=400,
            user_id=user_id,
            message="That page of events does not exist; start again from the customer page.",
        )
    context = {
        "events": events,
        "events_url": customer_url(env, user_id) + "/events",
        "user_id": user_id,
        "customer": customer,
    }
    if is_htmx(request):
        return render(request, "cc_event_rows.html", **context)
    return render(request, "customer_events.html", **context)


async def _send_page(
    request: Request[Any, Any, Any],
    env: str,
    user_id: str,
    chosen: dict[str, Any] | None,
    errors: dict[str, str] | None = None,
    refused: str = "",
    status: int = 200,
) -> Response[Any]:
    flows = await cc_send.offered_flows(request.app.state.hub, env)
    return render(
        request,
        "customer_send.html",
        status=status,
        user_id=user_id,
        flows=flows,
        chosen=chosen,
        errors=errors or {},
        refused=refused,
        back_url=customer_url(env, user_id),
        send_url=customer_url(env, user_id) + "/send",
    )


@get("/ui/{env:str}/customers/{user_id:str}/send", opt=staff_page("customer_center:edit"))
async def send_form(
    request: Request[Any, Any, Any], env: FromPath[str], user_id: FromPath[str]
) -> Response[Any]:
    if await _customer(request, env, user_id) is None:
        return _missing(request, user_id)
    flow_id = request.query_params.get("flow")
    if not flow_id:
        return await _send_page(request, env, user_id, None)
    try:
        chosen = await cc_send.offered_flow(request.app.state.hub, env, flow_id)
    except cc_send.SendRefused as exc:
        return await _send_page(request, env, user_id, None, refused=exc.message, status=exc.status)
    return await _send_page(request, env, user_id, chosen)


@post("/ui/{env:str}/customers/{user_id:str}/send", opt=staff_page("customer_center:edit"), status_code=200)
async def send_flow(
    request: Request[Any, Any, Any], env: FromPath[str], user_id: FromPath[str]
) -> Response[Any]:
    if await _customer(request, env, user_id) is None:
        return _missing(request, user_id)
    hub = request.app.state.hub
    form = await request.form()
    flow_id = str(form.get("flow") or "")
    try:
        chosen = await cc_send.offered_flow(hub, env, flow_id)
    except cc_send.SendRefused as exc:
        return await _send_page(request, env, user_id, None, refused=exc.message, status=exc.status)
    if not chosen["sendable"]:
        return await _send_page(
            request,
            env,
            user_id,
            chosen,
            refused=f"This flow cannot be sent here: it {chosen['reason']}.",
            status=422,
        )
    variables, errors = cc_send.read_form(chosen, form)
    if errors:
        return await _send_page(request, env, user_id, chosen, errors=errors, status=422)
    try:
        sent = await cc_send.send(hub, env, current_staff(request), user_id, chosen, variables)
    except cc_send.SendRefused as exc:
        return await _send_page(request, env, user_id, chosen, refused=exc.message, status=exc.status)
    return Response(
        "", status_code=303, headers={"Location": customer_url(env, user_id, sent=sent["invocationId"])}
    )


@get("/ui/{env:str}/audit", opt=staff_page(None))
async def audit_page(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    member = current_staff(request)
    if not (member.can("workbench:admin", env) or member.can("customer_center:edit", env)):
        raise Forbidden(f"the audit log needs workbench:admin or customer_center:edit in environment {env}")
    before_raw = request.query_params.get("before", "")
    before = int(before_raw) if before_raw.isdigit() and len(before_raw) < 19 else None
    entries = await staff_service.audit_log(request.app.state.hub, env, limit=AUDIT_PAGE + 1, before=before)
    older = (
        f"/ui/{quote(env, safe='')}/audit?before={entries[AUDIT_PAGE - 1]['id']}"
        if len(entries) > AUDIT_PAGE
        else None
    )
    return render(
        request,
        "customer_audit.html",
        entries=entries[:AUDIT_PAGE],
        older=older,
        first=before is None,
        customer_url=customer_url,
    )


ROUTES = (customer_page, customer_events, send_form, send_flow, audit_page)
