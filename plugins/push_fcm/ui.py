"""The FCM settings page of the staff UI (``workbench:admin``): whether the environment has
credentials, their project, service account and key id (never the key), and a form to upload a
service account's JSON key file, checked exactly as ``hub push-fcm set`` checks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath

from hub.registry import UiEntry
from hub_plugins.push_fcm import config, sender
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench import web

ENTRY = UiEntry(id="push_fcm", title="Push: Firebase (FCM)", path="/ui/{env}/settings/push-fcm",
                section="settings", permission="workbench:admin")
web.add_templates(Path(__file__).parent / "templates")

Req = Request[Any, Any, Any]


async def _page(request: Req, env: str, *, message: str = "", errors: dict[str, str] | None = None,
                status: int = 200) -> Response[Any]:
    shown = await config.get_view(request.app.state.hub, env)
    return web.render(request, "push_fcm_settings.html", status=status, shown=shown, message=message,
                      errors=errors or {}, platforms=config.PLATFORMS)


@get("/ui/{env:str}/settings/push-fcm", opt=web.staff_page("workbench:admin"))
async def fcm_page(request: Req, env: FromPath[str]) -> Response[Any]:
    return await _page(request, env)


@post("/ui/{env:str}/settings/push-fcm", opt=web.staff_page("workbench:admin"),
      request_max_body_size=100_000)
async def fcm_save(request: Req, env: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    form = await request.form()
    upload = form.get("service_account")
    text = ""
    if upload is not None and not isinstance(upload, str):
        text = (await upload.read()).decode("utf-8", "replace")
    if not text.strip():
        missing = {"service_account": "choose the service account's JSON key file"}
        return await _page(request, env, errors=missing, status=422)
    try:
        account = json.loads(text)
    except json.JSONDecodeError as exc:
        return await _page(request, env, errors={"service_account": f"not JSON: {exc.msg}"}, status=422)
    platforms = [p for p in config.PLATFORMS if form.get(f"platform_{p}") == "on"] or None
    try:
        saved = await config.save(hub, env, account, platforms)
    except config.ConfigError as exc:
        return await _page(request, env, errors={"service_account": f"{exc.field}: {exc.reason}"}, status=422)
    sender.forget_config(hub, env)  # as the API does: this process sends with the new key now
    async with hub.db.begin() as conn:
        await staff_service.record(conn, web.current_staff(request), env, "push_fcm.configured", "push_fcm",
                                   {"projectId": saved["projectId"], "privateKeyId": saved["privateKeyId"]})
    return await _page(request, env, message=f"Credentials of project {saved['projectId']} saved.")


def router() -> Router:
    return web.router([fcm_page, fcm_save])
