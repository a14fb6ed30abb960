"""The Salesforce Marketing Cloud settings page of the staff UI (``workbench:admin``): the
Journey Builder activity's URLs and settings as ``GET /v1/{env}/integrations/sfmc`` shows them
(never the JWT signing secret), and the Salesforce profile sync with its last run. Changing them
stays with the API and ``hub sfmc``, which take the secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from hub.registry import UiEntry
from hub_plugins.salesforce_mc import config, sync_config
from hub_plugins.salesforce_mc.api import base_url
from hub_plugins.workbench import web

ENTRY = UiEntry(id="sfmc", title="Salesforce Marketing Cloud", path="/ui/{env}/settings/sfmc",
                section="settings", permission="workbench:admin")
web.add_templates(Path(__file__).parent / "templates")


@get("/ui/{env:str}/settings/sfmc", opt=web.staff_page("workbench:admin"))
async def sfmc_page(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    activity = await config.get(hub, env)
    sync = await sync_config.get(hub, env)
    return web.render(request, "sfmc_settings.html",
                      activity=None if activity is None else config.view(activity, base_url(hub, request)),
                      sync=None if sync is None else sync_config.view(sync))


def router() -> Router:
    return web.router([sfmc_page])
