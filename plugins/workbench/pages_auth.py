"""Signing in and out, choosing an environment, and the UI's static files.

``GET /ui/login`` sets a random ``hub_login_csrf`` cookie that the form echoes (a double-submit
token: a page of another site can neither read the cookie nor set the field). Failed sign-ins
are counted per email and per client address in Redis; past ``HUB_WORKBENCH_LOGIN_MAX_FAILURES``
in ``HUB_WORKBENCH_LOGIN_WINDOW_SECONDS`` the form answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from hub.services import environments
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.staff import SESSION_COOKIE
from hub_plugins.workbench.web import (
    STATIC,
    Forbidden,
    RedirectTo,
    cookie_secure,
    current_staff,
    render,
    staff_page,
)

LOGIN_CSRF_COOKIE = "hub_login_csrf"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml", ".png": "image/png"}
PUBLIC = {"public": "staff sign-in page"}


def safe_next(target: str | None) -> str:
    """Only a path of this UI: never another site (``//evil``, ``https://...``), never the API."""
    if not target or not target.startswith("/ui/") or target.startswith("//") or "\\" in target:
        return "/ui/"
    return target


def _client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(request: Request[Any, Any, Any], *, status: int = 200, error: str = "",
                email: str = "", target: str = "/ui/",
                headers: dict[str, str] | None = None) -> Response[Any]:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    settings = staff_service.settings_of(request.app.state.hub)
    response = render(request, "login.html", status=status, headers=headers, error=error, email=email,
                      next=target, csrf_token=token,
                      oidc_label=settings.oidc_label if settings.oidc_issuer else "")
    response.set_cookie(Cookie(key=LOGIN_CSRF_COOKIE, value=token, path="/ui/", httponly=True,
                               samesite="strict", secure=cookie_secure(request, settings.cookie_secure),
                               max_age=3600))
    return response


@get("/ui/login", opt=PUBLIC)
async def login_form(request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Response[Any]:
    return _login_page(request, target=safe_next(next))


@post("/ui/login", opt=PUBLIC, request_max_body_size=16_384)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    hub = request.app.state.hub
    form = await request.form()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not hmac.compare_digest(cookie_token.encode(),
                                                   str(form.get("csrf_token", "")).encode()):
        return _login_page(request, status=403, email=email, target=target,
                           error="The sign-in form expired. Try again.")
    if not email or not password:
        return _login_page(request, status=422, email=email, target=target,
                           error="Enter your email and your password.")
    keys = [f"email:{email.lower()}", f"address:{_client_address(request)}"]
    wait = await staff_service.login_allowed(hub, keys)
    if wait:
        minutes = max(1, round(wait / 60))
        return _login_page(request, status=429, email=email, target=target,
                           headers={"Retry-After": str(wait)},
                           error=f"Too many failed sign-ins. Try again in about {minutes} minute(s).")
    member = await staff_service.authenticate(hub, email, password)
    if member is None:
        await staff_service.login_failed(hub, keys)
        return _login_page(request, status=401, email=email, target=target,
                           error="That email and password do not match an active account.")
    await staff_service.login_succeeded(hub, email)
    return await signed_in(request, member, target)


async def signed_in(request: Request[Any, Any, Any], member: staff_service.Staff,
                    target: str) -> Response[Any]:
    """Open a session for ``member`` and send them on to ``target`` (or where they land)."""
    hub = request.app.state.hub
    token, expires = await staff_service.open_session(hub, member, request.headers.get("user-agent", ""))
    settings = staff_service.settings_of(hub)
    response: Response[Any] = Redirect(target, status_code=303)
    response.set_cookie(Cookie(key=SESSION_COOKIE, value=token, path="/", httponly=True, samesite="lax",
                               secure=cookie_secure(request, settings.cookie_secure),
                               max_age=int(settings.session_hours * 3600)))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/")
    return response


@post("/ui/logout", opt=staff_page(None), status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    await staff_service.close_session(request.app.state.hub, request.cookies.get(SESSION_COOKIE, ""))
    response: Response[Any] = Redirect("/ui/login", status_code=303)
    if request.headers.get("hx-request") == "true":
        response = Response("", headers={"HX-Redirect": "/ui/login"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _environments_of(request: Request[Any, Any, Any]) -> list[str]:
    member = current_staff(request)
    known = [e["id"] for e in await environments.list_environments(request.app.state.hub.db)]
    return member.environments(known)


@get("/ui/", opt=staff_page(None))
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    """One environment: straight to it. Several: a chooser. None: say so."""
    envs = await _environments_of(request)
    if len(envs) == 1:
        raise RedirectTo(f"/ui/{envs[0]}/")
    request.scope["state"]["staff_environments"] = envs
    return render(request, "environments.html", environments=envs)


@get("/ui/{env:str}/", opt=staff_page(None))
async def environment_home(request: Request[Any, Any, Any], env: FromPath[str]) -> Response[Any]:
    member = current_staff(request)
    if not member.permissions(env):
        raise Forbidden(f"your groups grant nothing in environment {env}")
    if member.landing(env) == "workbench":
        raise RedirectTo(f"/ui/{env}/flows")
    raise RedirectTo(f"/ui/{env}/customers")


@cache
def _static(name: str) -> tuple[bytes, str] | None:
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file() or path.suffix not in STATIC_TYPES:
        return None
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@get("/ui/static/{name:str}", opt={"public": "static asset"})
async def static(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    found = _static(name)
    if found is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    body, etag = found
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=STATIC_TYPES[name[name.rfind("."):]], headers=headers)


ROUTES = (login_form, login, logout, home, environment_home, static)
