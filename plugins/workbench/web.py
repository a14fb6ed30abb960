"""What every staff page shares: templates, the session and permission check, CSRF, responses.

Staff pages are server-rendered (Jinja2, autoescaped) and made interactive with htmx, served
from this plugin, so there is no front-end build step. A page route declares the permission it
needs::

    @get("/ui/{env:str}/flows", opt=staff_page("workbench:view"))
    async def flows(request: Request, env: str) -> Response: ...

and is registered inside :data:`ROUTER_OPTIONS`'s exception handlers (see :func:`router`).

The check (:func:`staff_guard`, run by the app's request guard through ``opt["authenticate"]``):

- no session, or an expired one: pages redirect to ``/ui/login?next=...``; htmx requests get 401
  with ``HX-Redirect``;
- a member without the permission in the path's environment: a Customer-Center-only member
  asking for a Workbench page is redirected to the Customer Center; anyone else gets 403;
- every unsafe method (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, in the
  ``X-CSRF-Token`` header (htmx sends it from ``<body hx-headers>``) or a ``csrf_token`` form
  field, and an ``Origin`` header, when sent, must be this site's.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect

from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.staff import SESSION_COOKIE, Staff

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Pages answer with these on top of their own: no framing, no inline script, no leaking paths.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: https:; "
                                "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                                "connect-src 'self' ws: wss:; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of staff pages: plugins adding a page may add a loader of their own
    templates with :func:`add_templates`."""
    return _env


def add_templates(directory: Path) -> None:
    """Let :func:`render` find templates in ``directory`` too (a plugin's own pages)."""
    loader = _env.loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    if str(directory) not in loader.searchpath:
        loader.searchpath.append(str(directory))


class SignInRequired(Exception):
    """No valid session: back to the sign-in page."""


class Forbidden(Exception):
    """Signed in, but without the permission the page needs."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class RedirectTo(Exception):
    """Answer with a redirect to ``location`` (htmx requests get ``HX-Redirect``)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def staff_page(permission: str | None, **extra: Any) -> dict[str, Any]:
    """The ``opt`` of a staff route: its permission (None: any signed-in member)."""
    return {"authenticate": staff_guard, "staff_permission": permission, "auth": "staff session", **extra}


def current_staff(request: Request[Any, Any, Any]) -> Staff:
    member = request.scope.get("state", {}).get("staff")
    if member is None:  # pragma: no cover - every staff route runs staff_guard first
        raise SignInRequired()
    return member


def is_htmx(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.headers.get("hx-request") == "true"


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("x-forwarded-host") or connection.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def staff_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    hub = connection.app.state.hub
    token = connection.cookies.get(SESSION_COOKIE, "")
    member = await staff_service.session_staff(hub, token) if token else None
    if member is None:
        raise SignInRequired()
    connection.scope.setdefault("state", {})["staff"] = member
    if connection.scope.get("method", "GET") in UNSAFE:
        if not _same_origin(connection):
            raise Forbidden("this request came from another site")
        given = connection.headers.get("x-csrf-token")
        if given is None and isinstance(connection, Request):
            content_type = connection.headers.get("content-type", "")
            if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                given = (await connection.form()).get("csrf_token")
        if not given or not _equal(str(given), member.csrf_token):
            raise Forbidden("the form has expired or did not come from this site; reload the page")
    permission = handler.opt.get("staff_permission")
    env = connection.path_params.get("env")
    if permission is None:
        return
    if env is None:  # pragma: no cover - routes with a permission are per environment
        raise Forbidden("no environment")
    if not member.can(permission, env):
        if permission.startswith("workbench:") and member.can("customer_center:view", env) \
                and connection.scope.get("method") == "GET":
            raise RedirectTo(f"/ui/{env}/customers")
        raise Forbidden(f"your groups do not grant {permission} in environment {env}")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --- responses -----------------------------------------------------------------------------


def html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**SECURITY_HEADERS, **(headers or {})})


def render(request: Request[Any, Any, Any], template: str, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> Response[str]:
    """Render ``template`` with the page context (member, environment, navigation) and ``context``.

    The environment is the path's ``{env}``, else an ``env`` in ``context`` (a share link's)."""
    member = request.scope.get("state", {}).get("staff")
    env = request.path_params.get("env") or context.get("env")
    hub = request.app.state.hub
    page = {"member": member, "env": env, "path": request.url.path,
            "nav": navigation(hub, member, env) if member is not None and env is not None else [],
            "environments": request.scope.get("state", {}).get("staff_environments", [])}
    return html(_env.get_template(template).render(page=page, **context), status, headers)


def navigation(hub: Any, member: Staff, env: str) -> list[dict[str, Any]]:
    """The sections and pages ``member`` may open in ``env``: the built-in ones, then those
    plugins contribute with ``hub_register_ui``."""
    items: list[dict[str, Any]] = []
    if member.can("workbench:view", env):
        items += [{"section": "Workbench", "title": "Flows", "path": f"/ui/{env}/flows"},
                  {"section": "Workbench", "title": "Customers", "path": f"/ui/{env}/workbench/customers"},
                  {"section": "Workbench", "title": "Analytics", "path": f"/ui/{env}/analytics"}]
    if member.can("customer_center:view", env):
        items.append({"section": "Customer Center", "title": "Customers", "path": f"/ui/{env}/customers"})
    if member.can("workbench:admin", env) or member.can("customer_center:edit", env):
        items.append({"section": "Customer Center", "title": "Audit log", "path": f"/ui/{env}/audit"})
    for entry in sorted(hub.registry.ui.values(), key=lambda e: (e.section, e.title)):
        if member.can(entry.permission, env):
            items.append({"section": entry.section.replace("_", " ").title(), "title": entry.title,
                          "path": entry.path.replace("{env}", env)})
    return items


def sign_in_url(request: Request[Any, Any, Any]) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/ui/login?next={quote(target, safe='')}"


def _on_sign_in_required(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    location = sign_in_url(request) if request.method == "GET" else "/ui/login"
    if is_htmx(request):
        return html("", 401, {"HX-Redirect": location})
    if request.method != "GET":
        return html(_env.get_template("error.html").render(
            page={"member": None, "env": None, "nav": [], "environments": [], "path": request.url.path},
            status=401, message="Your session has ended. Sign in again."), 401)
    return Redirect(location, status_code=303)


def _on_forbidden(request: Request[Any, Any, Any], exc: Forbidden) -> Response[Any]:
    member = request.scope.get("state", {}).get("staff")
    env = request.path_params.get("env")
    hub = request.app.state.hub
    page = {"member": member, "env": env, "path": request.url.path, "environments": [],
            "nav": navigation(hub, member, env) if member is not None and env else []}
    return html(_env.get_template("error.html").render(page=page, status=403, message=exc.detail), 403)


def _on_redirect(request: Request[Any, Any, Any], exc: RedirectTo) -> Response[Any]:
    if is_htmx(request):
        return html("", 200, {"HX-Redirect": exc.location})
    return Redirect(exc.location, status_code=303)


EXCEPTION_HANDLERS: dict[Any, Callable[..., Response[Any]]] = {
    SignInRequired: _on_sign_in_required,
    Forbidden: _on_forbidden,
    RedirectTo: _on_redirect,
}


def router(handlers: Sequence[Any]) -> Router:
    """The staff routes, with the exception handlers that turn sign-in and permission failures
    into redirects and pages (rather than the API's problem documents)."""
    return Router(path="/", route_handlers=list(handlers), exception_handlers=EXCEPTION_HANDLERS,
                  include_in_schema=False)


def cookie_secure(request: Request[Any, Any, Any], setting: str) -> bool:
    if setting == "always":
        return True
    if setting == "never":
        return False
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return (forwarded or request.url.scheme) == "https"
