"""The APNs settings page of the staff UI (``workbench:admin``): whether the environment has a
key, its key id, team id, topic and APNs environment (never the key), and a form to upload a
``.p8`` key, checked exactly as ``hub push-apns set`` checks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath

from hub.registry import UiEntry
from hub_plugins.push_apns import config, sender
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench import web

ENTRY = UiEntry(id="push_apns", title="Push: Apple (APNs)", path="/ui/{env}/settings/push-apns",
                section="settings", permission="workbench:admin")
web.add_templates(Path(__file__).parent / "templates")
FIELDS = {"keyP8": "key_p8", "keyId": "key_id", "teamId": "team_id", "topic": "topic",
          "environment": "environment"}

Req = Request[Any, Any, Any]


async def _page(request: Req, env: str, *, message: str = "", errors: dict[str, str] | None = None,
                form: dict[str, str] | None = None, status: int = 200) -> Response[Any]:
    shown = await config.get_view(request.app.state.hub, env)
    defaults = {"key_id": "", "team_id": "", "topic": "", "environment": "production"}
    if shown:
        defaults.update(key_id=shown["keyId"], team_id=shown["teamId"], topic=shown["topic"],
                        environment=shown["environment"])
    return web.render(request, "push_apns_settings.html", status=status, shown=shown, message=message,
                      errors=errors or {}, form={**defaults, **(form or {})},
                      environments=config.ENVIRONMENTS)


@get("/ui/{env:str}/settings/push-apns", opt=web.staff_page("workbench:admin"))
async def apns_page(request: Req, env: FromPath[str]) -> Response[Any]:
    return await _page(request, env)


@post("/ui/{env:str}/settings/push-apns", opt=web.staff_page("workbench:admin"),
      request_max_body_size=100_000)
async def apns_save(request: Req, env: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    form = await request.form()
    fields = {name: str(form.get(name, "")).strip()
              for name in ("key_id", "team_id", "topic", "environment")}
    upload = form.get("key_p8")
    key = "" if upload is None or isinstance(upload, str) else (await upload.read()).decode("utf-8",
                                                                                             "replace")
    if not key.strip():
        return await _page(request, env, errors={"key_p8": "choose the .p8 key file"}, form=fields,
                           status=422)
    try:
        saved = await config.save(hub, env, key, fields["key_id"], fields["team_id"], fields["topic"],
                                  fields["environment"])
    except config.ConfigError as exc:
        field = FIELDS.get(exc.field.split(".")[0], "key_p8")
        return await _page(request, env, errors={field: exc.reason}, form=fields, status=422)
    sender.forget_config(hub, env)  # as the API does: this process sends with the new key now
    async with hub.db.begin() as conn:
        await staff_service.record(
            conn, web.current_staff(request), env, "push_apns.configured", "push_apns",
            {"keyId": saved["keyId"], "teamId": saved["teamId"], "topic": saved["topic"]})
    return await _page(request, env, message=f"Key {saved['keyId']} saved.")


def router() -> Router:
    return web.router([apns_page, apns_save])
