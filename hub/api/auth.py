"""API-client authentication: client credentials in, short-lived JWT out, and the route guard.

Every route under ``/v1/{env}/`` names the permission it needs in its ``opt``; the guard checks a
bearer token of that environment whose roles grant it. 401: no token, expired, forged. 403: a
valid token of another environment, or without the permission.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from typing import Any

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from litestar import Litestar, Request, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from sqlalchemy import select

from hub.api.problems import FieldError, Problem, json_body_guard
from hub.db import tables
from hub.hookspecs import hookimpl

ISSUER = "hub"

# Roles an API client can hold, and the permissions each grants. ``read`` grants every
# ``*:read`` permission, ``admin`` grants everything.
ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "read": frozenset({"*:read"}),
    "users": frozenset({"users:read", "users:write", "fields:read", "fields:write"}),
    "flows": frozenset({"flows:read", "flows:write"}),
    "trigger": frozenset({"flows:read", "flows:trigger"}),
    "cards": frozenset({"cards:read", "cards:write"}),
    "analytics": frozenset({"analytics:read", "events:write"}),
    "integrations": frozenset({"webhooks:read", "webhooks:write", "sdk_keys:read", "sdk_keys:write",
                               "marketo:read", "marketo:write", "sfmc:read", "sfmc:write",
                               "flows:read"}),
}


def role_grants(roles: list[str] | tuple[str, ...], permission: str) -> bool:
    for role in roles:
        grants = ROLES.get(role, frozenset())
        if "*" in grants or permission in grants:
            return True
        if "*:read" in grants and permission.endswith(":read"):
            return True
    return False


class Claims(msgspec.Struct, frozen=True):
    sub: str
    env: str
    roles: tuple[str, ...]
    exp: int


def hash_secret(secret: str) -> str:
    """Client secrets are 256 random bits, so a plain SHA-256 suffices; no stretching needed."""
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def check_secret(secret: str, stored: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored)


def new_client_credentials() -> tuple[str, str]:
    return "hubc_" + secrets.token_hex(10), "hubs_" + secrets.token_urlsafe(32)


class TokenService:
    """Issues and verifies access tokens (HS256, key derived from ``HUB_SECRET_KEY``)."""

    def __init__(self, secret_key: str, ttl_seconds: int, cache_size: int = 10_000) -> None:
        derived = hmac.new(secret_key.encode(), b"hub api access token v1", hashlib.sha256).digest()
        self._key = OctKey.import_key(derived)
        self.ttl = ttl_seconds
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def issue(self, client_id: str, env: str, roles: list[str]) -> tuple[str, int]:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": client_id, "env": env, "roles": list(roles),
                  "iat": now, "exp": now + self.ttl, "jti": secrets.token_hex(8)}
        return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, self._key), self.ttl

    def verify(self, token: str) -> Claims | None:
        """The token's claims, or ``None`` if it is forged, malformed or expired."""
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            return cached if cached.exp > now else None
        try:
            decoded = jwt.decode(token, self._key, algorithms=["HS256"])
            registry = jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": ISSUER}, exp={"essential": True},
                sub={"essential": True},
            )
            registry.validate(decoded.claims)
            claims = msgspec.convert(decoded.claims, Claims)
        except (JoseError, ValueError, msgspec.ValidationError):
            return None
        self._cache[token] = claims
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return claims


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="hub"'},
                   errors=[FieldError("header.authorization", detail)])


async def api_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Check the bearer token against the route's ``permission`` and ``{env}`` path parameter."""
    permission = handler.opt.get("permission")
    if permission is None:
        return
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required: POST /v1/{env}/oauth/token")
    hub = connection.app.state.hub
    claims = hub.tokens.verify(token.strip())
    if claims is None:
        raise _unauthorized("the token is invalid or has expired")
    env = connection.path_params.get("env")
    if env is not None and env != claims.env:
        raise Problem(403, f"this token belongs to environment {claims.env!r}, not {env!r}")
    if not role_grants(claims.roles, permission):
        raise Problem(403, f"the client's roles {list(claims.roles)} do not grant {permission!r}")
    connection.scope.setdefault("state", {})["auth"] = claims


async def request_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app's one check of every HTTP request: content type, then authentication.

    It runs as the app's ``before_request`` (:func:`authorize_request`) rather than as a Litestar
    guard, because Litestar copies the route handler for every guard of every request, which
    costs more than the checks themselves on the hottest routes (feed polls).

    A route authenticated by other means than API client tokens (end users' JWTs, signed
    webhooks) names its check in ``opt["authenticate"]``, an ``async (connection, handler)``
    callable run here, rather than adding a guard of its own."""
    await json_body_guard(connection, handler)
    await api_guard(connection, handler)
    authenticate = handler.opt.get("authenticate")
    if authenticate is not None:
        await authenticate(connection, handler)


async def authorize_request(request: Request[Any, Any, Any]) -> None:
    """The app's ``before_request``: :func:`request_guard` on the request's route handler."""
    await request_guard(request, request.route_handler)


def route_handlers(route: Any) -> list[Any]:
    """The handlers of an HTTP route (one per method) or of a WebSocket route (its one handler)."""
    handlers = getattr(route, "route_handlers", None)
    if handlers is None:
        handler = getattr(route, "route_handler", None)
        handlers = [] if handler is None else [handler]
    return list(handlers)


def check_route_auth(app: Litestar) -> None:
    """Refuse to start when a route under /v1/ says nothing about how it is authenticated."""
    for route in app.routes:
        for handler in route_handlers(route):
            if not route.path.startswith("/v1/") or "OPTIONS" in getattr(handler, "http_methods", ()):
                continue
            if hasattr(handler, "http_methods") and handler.resolve_before_request() is not authorize_request:
                raise RuntimeError(
                    f"route {route.path} ({handler.handler_name}) sets its own before_request, which "
                    "would replace the app's authentication: use opt['authenticate'] instead")
            if "permission" in handler.opt and not hasattr(handler, "http_methods"):
                raise RuntimeError(
                    f"WebSocket route {route.path} ({handler.handler_name}) declares opt['permission']: "
                    "sockets authenticate in their handler and declare opt['auth'] instead")
            if "permission" not in handler.opt and "auth" not in handler.opt:
                raise RuntimeError(
                    f"route {route.path} ({handler.handler_name}) declares neither "
                    "opt['permission'] nor opt['auth']: every API route must be authenticated"
                )


# --- the token endpoint --------------------------------------------------------------------


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    grant_type: str = ""
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


def _oauth_error(status: int, error: str, detail: str, field: str) -> Problem:
    headers = {"WWW-Authenticate": 'Basic realm="hub"'} if status == 401 else None
    return Problem(status, detail, errors=[FieldError(field, detail)], headers=headers,
                   extra={"error": error, "error_description": detail})


async def _token_request(request: Request[Any, Any, Any]) -> TokenRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == RequestEncodingType.URL_ENCODED:
        form = await request.form()
        values = {k: form.get(k) for k in ("grant_type", "client_id", "client_secret", "scope")}
        data = TokenRequest(**{k: str(v) for k, v in values.items() if v is not None})
    elif content_type in ("application/json", ""):
        try:
            data = msgspec.json.decode(await request.body() or b"{}", type=TokenRequest)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _oauth_error(400, "invalid_request", f"malformed token request: {exc}", "body") from exc
    else:
        raise _oauth_error(415, "invalid_request",
                           "send application/x-www-form-urlencoded or application/json",
                           "header.content-type")
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise _oauth_error(401, "invalid_client", "malformed Basic credentials",
                               "header.authorization") from exc
        data = msgspec.structs.replace(data, client_id=user, client_secret=password)
    return data


@post("/v1/{env:str}/oauth/token", opt={"auth": "client_credentials"}, status_code=200,
      tags=["auth"], summary="Exchange client credentials for an access token",
      security=[], request_max_body_size=16_384)
async def token(request: Request[Any, Any, Any], env: FromPath[str]) -> TokenResponse:
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4): form, JSON, or HTTP Basic."""
    data = await _token_request(request)
    if data.grant_type != "client_credentials":
        raise _oauth_error(400, "unsupported_grant_type",
                           "grant_type must be client_credentials", "grant_type")
    if not data.client_id or not data.client_secret:
        raise _oauth_error(401, "invalid_client", "client_id and client_secret are required",
                           "client_id")
    hub = request.app.state.hub
    async with hub.db.connect() as conn:
        row = (await conn.execute(
            select(tables.api_client).where(tables.api_client.c.client_id == data.client_id)
        )).mappings().first()
    if (row is None or row["environment_id"] != env or row["revoked_at"] is not None
            or not check_secret(data.client_secret, row["secret_hash"])):
        raise _oauth_error(401, "invalid_client", "unknown client or wrong secret", "client_id")
    access_token, ttl = hub.tokens.issue(row["client_id"], env, row["roles"])
    return TokenResponse(access_token, "Bearer", ttl, " ".join(row["roles"]))


@hookimpl
def hub_register_routes(register: Any) -> None:
    register(token)

