"""The webhooks settings page of the staff UI (``workbench:admin``): outbound subscriptions with
pause and resume, and the inbound trigger endpoints. Never shows a token, a signing secret or a
header value (subscription headers often carry credentials): only header names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath

from hub.registry import UiEntry
from hub_plugins.webhooks import inbound_store, outbound_service
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench import web

PATH = "/ui/{env}/settings/webhooks"
ENTRY = UiEntry(id="webhooks", title="Webhooks", path=PATH, section="settings", permission="workbench:admin")
web.add_templates(Path(__file__).parent / "templates")

Req = Request[Any, Any, Any]


async def _page(request: Req, env: str, *, message: str = "", error: str = "",
                status: int = 200) -> Response[Any]:
    hub = request.app.state.hub
    subscriptions = (await outbound_service.list_subscriptions(hub, env, None, 200))["webhooks"]
    triggers = (await inbound_store.list_triggers(hub, env, limit=200))["triggers"]
    return web.render(request, "webhooks_settings.html", status=status, subscriptions=subscriptions,
                      triggers=triggers, message=message, error=error)


@get("/ui/{env:str}/settings/webhooks", opt=web.staff_page("workbench:admin"))
async def webhooks_page(request: Req, env: FromPath[str]) -> Response[Any]:
    return await _page(request, env)


@post("/ui/{env:str}/settings/webhooks/{sub_id:str}/state", opt=web.staff_page("workbench:admin"))
async def set_state(request: Req, env: FromPath[str], sub_id: FromPath[str]) -> Response[Any]:
    """Pause (``state=paused``, with an optional reason) or resume (``state=active``) a subscription."""
    hub = request.app.state.hub
    form = await request.form()
    state = str(form.get("state", ""))
    if state not in ("paused", "active"):
        return await _page(request, env, error="state must be paused or active", status=422)
    member = web.current_staff(request)
    reason = str(form.get("reason", "")).strip()[:300] or f"paused by {member.email}"
    try:
        await outbound_service.set_state(hub, env, sub_id, state, reason if state == "paused" else None)
    except outbound_service.NotFound:
        return await _page(request, env, error=f"There is no webhook {sub_id!r} in {env}.", status=404)
    done = "paused" if state == "paused" else "resumed"
    async with hub.db.begin() as conn:
        await staff_service.record(conn, member, env, f"webhook.{done}", f"webhook:{sub_id}",
                                   {"reason": reason} if state == "paused" else {})
    return await _page(request, env, message=f"Webhook {sub_id} {done}.")


def router() -> Router:
    return web.router([webhooks_page, set_state])
