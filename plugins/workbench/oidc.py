"""Optional staff sign-in through an OpenID Connect provider (authorization code flow + PKCE).

Set ``HUB_WORKBENCH_OIDC_ISSUER``, ``..._CLIENT_ID`` and ``..._CLIENT_SECRET``; register
``<base>/ui/login/oidc/callback`` as the client's redirect URI at the provider. The sign-in page
then offers a single sign-on button.

- ``GET /ui/login/oidc`` keeps a random ``state``, ``nonce`` and PKCE verifier in Redis for ten
  minutes (one use) and redirects to the provider's authorization endpoint (from its discovery
  document, cached for an hour).
- ``GET /ui/login/oidc/callback`` takes the state back (once), exchanges the code (PKCE helpers
  from authlib, client authentication ``client_secret_basic``), and checks the ID token with
  joserfc: signature against the provider's JWKS,
  ``iss``, ``aud`` (our client id), ``exp``, ``iat`` and the ``nonce``. The token must carry an
  ``email``; when it says ``email_verified: false`` the sign-in is refused.
- The provider proves who someone is; Hub decides what they may do: the email must belong to an
  enabled staff member (``hub staff create --email ... --groups ... --oidc-only``). Nobody is
  created on first sign-in.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Redirect

from hub.logging import get_logger
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.pages_auth import PUBLIC, safe_next, signed_in
from hub_plugins.workbench.web import render

log = get_logger(__name__)
STATE_SECONDS = 600
DISCOVERY_SECONDS = 3600
_discovery: dict[str, tuple[float, dict[str, Any], KeySet]] = {}


class OidcError(Exception):
    """The provider's answer cannot sign anyone in; the message is shown on the sign-in page."""


async def provider(issuer: str, *, refresh: bool = False) -> tuple[dict[str, Any], KeySet]:
    """The issuer's discovery document and signing keys, cached for an hour."""
    cached = _discovery.get(issuer)
    if cached and not refresh and cached[0] > time.monotonic():
        return cached[1], cached[2]
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            found = await client.get(issuer.rstrip("/") + "/.well-known/openid-configuration")
            document = found.raise_for_status().json()
            if document.get("issuer") != issuer:
                raise OidcError(f"the provider names itself {document.get('issuer')!r}, not {issuer!r}")
            keys = KeySet.import_key_set((await client.get(document["jwks_uri"])).raise_for_status().json())
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise OidcError(f"the sign-on provider cannot be reached ({type(exc).__name__})") from exc
    _discovery[issuer] = (time.monotonic() + DISCOVERY_SECONDS, document, keys)
    return document, keys


def _redirect_uri(request: Request[Any, Any, Any]) -> str:
    base = staff_service.settings_of(request.app.state.hub).public_base_url.rstrip("/")
    if not base:
        base = str(request.base_url).rstrip("/")
    return base + "/ui/login/oidc/callback"


async def exchange_code(request: Request[Any, Any, Any], token_endpoint: str, code: str,
                        verifier: str) -> dict[str, Any]:
    """The token response for ``code`` (RFC 6749 §4.1.3 with PKCE, ``client_secret_basic``)."""
    settings = staff_service.settings_of(request.app.state.hub)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                token_endpoint, auth=(settings.oidc_client_id, settings.oidc_client_secret),
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": _redirect_uri(request), "code_verifier": verifier},
                headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OidcError(f"the provider's token endpoint cannot be reached ({type(exc).__name__})") from exc
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", answer.status_code) if isinstance(body, dict) else answer.status_code
        raise OidcError(f"the code was refused ({error})")
    return body


def _failed(request: Request[Any, Any, Any], reason: str, status: int = 401) -> Response[Any]:
    return render(request, "login.html", status=status, error=f"Single sign-on failed: {reason}",
                  email="", next="/ui/", csrf_token=secrets.token_urlsafe(24),
                  oidc_label=staff_service.settings_of(request.app.state.hub).oidc_label)


@get("/ui/login/oidc", opt=PUBLIC)
async def start(request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Response[Any]:
    settings = staff_service.settings_of(request.app.state.hub)
    if not settings.oidc_issuer:
        return Response("single sign-on is not configured", status_code=404, media_type="text/plain")
    try:
        document, _keys = await provider(settings.oidc_issuer)
    except OidcError as exc:
        return _failed(request, str(exc), 502)
    state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
    verifier = verifier + secrets.token_urlsafe(24)  # PKCE wants 43 to 128 characters
    await request.app.state.hub.redis.set(
        f"hub:workbench:oidc:{state}",
        json.dumps({"nonce": nonce, "verifier": verifier, "next": safe_next(next)}), ex=STATE_SECONDS)
    url = add_params_to_uri(document["authorization_endpoint"], [
        ("response_type", "code"), ("client_id", settings.oidc_client_id),
        ("redirect_uri", _redirect_uri(request)), ("scope", "openid email profile"), ("state", state),
        ("nonce", nonce), ("code_challenge", create_s256_code_challenge(verifier)),
        ("code_challenge_method", "S256")])
    return Redirect(url, status_code=303)


async def _take_state(request: Request[Any, Any, Any], state: str) -> dict[str, Any] | None:
    name = f"hub:workbench:oidc:{state}"
    async with request.app.state.hub.redis.pipeline(transaction=True) as pipe:
        pipe.get(name)
        pipe.delete(name)
        raw, _deleted = await pipe.execute()
    return None if raw is None else json.loads(raw)


def check_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, times and nonce are right."""
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
            exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
            nonce={"essential": True, "value": nonce}, leeway=60,
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise OidcError(f"the ID token was refused ({type(exc).__name__}: {exc})") from exc
    return dict(token.claims)


@get("/ui/login/oidc/callback", opt=PUBLIC)
async def callback(request: Request[Any, Any, Any]) -> Response[Any]:
    hub = request.app.state.hub
    state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    error = request.query_params.get("error", "")
    settings = staff_service.settings_of(hub)
    if not settings.oidc_issuer:
        return Response("single sign-on is not configured", status_code=404, media_type="text/plain")
    if error:
        return _failed(request, f"the provider answered {error!r}")
    kept = await _take_state(request, state) if state else None
    if kept is None:
        return _failed(request, "the sign-in took too long or was already used; start again", 400)
    try:
        document, keys = await provider(settings.oidc_issuer)
        tokens = await exchange_code(request, document["token_endpoint"], code, kept["verifier"])
        if "id_token" not in tokens:
            raise OidcError("the provider sent no ID token")
        try:
            claims = check_id_token(tokens["id_token"], keys, issuer=settings.oidc_issuer,
                                    client_id=settings.oidc_client_id, nonce=kept["nonce"])
        except OidcError:
            # The provider may have rotated its keys since they were cached: read them once more.
            _document, keys = await provider(settings.oidc_issuer, refresh=True)
            claims = check_id_token(tokens["id_token"], keys, issuer=settings.oidc_issuer,
                                    client_id=settings.oidc_client_id, nonce=kept["nonce"])
    except OidcError as exc:
        log.warning("oidc_sign_in_refused", reason=str(exc))
        return _failed(request, str(exc))
    email = str(claims.get("email", ""))
    if not email or claims.get("email_verified") is False:
        return _failed(request, "the provider did not vouch for an email address", 403)
    member = await staff_service.staff_by_email(hub, email)
    if member is None:
        log.info("oidc_sign_in_unknown_staff", email=email)
        return _failed(request, f"{email} is not a Hub staff member here; ask an administrator", 403)
    return await signed_in(request, member, kept["next"])


ROUTES = (start, callback)
