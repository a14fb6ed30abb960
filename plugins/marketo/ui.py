"""The Marketo settings page of the staff UI (``workbench:admin``): the environment's integration
as ``GET /v1/{env}/marketo`` shows it (never the API key), the service URL to install in Marketo,
and its latest batches. Changing it stays with the API and ``hub marketo``, which show a new API
key once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from hub.registry import UiEntry
from hub_plugins.marketo import batches, config
from hub_plugins.marketo.api import service_url
from hub_plugins.marketo.ssfs import public_base
from hub_plugins.workbench import web

ENTRY = UiEntry(id="marketo", title="Marketo", path="/ui/{env}/settings/marketo", section="settings",
                permission="workbench:admin")
web.add_templates(Path(__file__).parent / "templates")


@get("/ui/{env:str}/settings/marketo", opt=web.staff_page("workbench:admin"))
async def marketo_page(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    shown = await config.get_view(hub, env)
    recent = (await batches.list_batches(hub, env, limit=20))["batches"] if shown else []
    return web.render(request, "marketo_settings.html", shown=shown, batches=recent,
                      service_url=service_url(public_base(hub, request), env))


def router() -> Router:
    return web.router([marketo_page])
