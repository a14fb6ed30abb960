"""Read-only share links: ``/ui/share/{token}`` shows one flow version to staff who may see it.

The token is an HMAC (under a key derived from ``HUB_SECRET_KEY``) of environment, flow and
version, so a link cannot be altered to name another flow or version. It is a capability to
*find* the version, not to read it: the page still needs a staff session holding
``workbench:view`` in that environment. A link pasted into a chat, a ticket or a browser history
leaks to whoever sees it, and a token cannot be revoked short of changing the secret key; with
the session check, a leaked link shows nothing to anyone outside the staff who could open the
flow in the Workbench anyway, and membership changes take effect at once.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from hub.services import flows as flow_service
from hub_plugins.workbench.wb_flows import pretty, read_share_token, readable
from hub_plugins.workbench.web import Forbidden, current_staff, render, staff_page

Req = Request[Any, Any, Any]


@get("/ui/share/{token:str}", opt=staff_page(None))
async def shared_flow(request: Req, token: FromPath[str]) -> Response[Any]:
    hub = request.app.state.hub
    named = read_share_token(hub, token)
    if named is None:
        return render(request, "wb_not_found.html", status=404, message="This share link is not valid.")
    env, flow_id, version = named
    if not current_staff(request).can("workbench:view", env):
        raise Forbidden(f"your groups do not grant workbench:view in environment {env}")
    try:
        flow = await flow_service.get_flow(hub, env, flow_id)
        shown = await flow_service.get_version(hub, env, flow_id, version)
    except flow_service.FlowNotFound:
        return render(request, "wb_not_found.html", status=404,
                      message="The flow version this link names is gone.")
    return render(request, "flow_share.html", env=env, flow=flow, shown=shown,
                  definition_text=pretty(shown["definition"]), view=readable(shown["definition"]))


ROUTES = (shared_flow,)
