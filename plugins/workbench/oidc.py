"""Optional staff sign-in through an OpenID Connect provider (authorization code flow + PKCE).

Set ``HUB_WORKBENCH_OIDC_ISSUER``, ``..._CLIENT_ID`` and ``..._CLIENT_SECRET``; register
``<base>/ui/login/oidc/callback`` as the client's redirect URI at the provider. The sign-in page
then offers a single sign-on button.

- ``GET /ui/login/oidc`` keeps a random ``state``, ``nonce`` and PKCE verifier in Redis for ten
  minutes (one use) and redirects to the provider's authorization endpoint (from its discovery
  document, cached for an hour).
- ``GET /ui/login/oidc/callback`` takes the state back (once) and exchanges the code through
  authlib's httpx client (``AsyncOAuth2Client``: PKCE ``code_verifier``, client authentication
  ``HUB_WORKBENCH_OIDC_TOKEN_AUTH_METHOD``). The ID token's signature is checked with joserfc
  against the provider's JWKS, then its claims with authlib's ``CodeIDToken``: ``iss``, ``aud``
  (our client id), ``exp``, ``iat``, ``sub``, the ``nonce``, ``azp`` and ``at_hash``. The token
  must carry an ``email`` with ``email_verified: true``, unless
  ``HUB_WORKBENCH_OIDC_TRUST_UNVERIFIED_EMAIL`` says the provider's addresses are trusted without
  the claim (``email_verified: false`` is refused either way).
- The provider proves who someone is; Hub decides what they may do: the email must belong to an
  enabled staff member (``hub staff create --email ... --groups ... --oidc-only``). Nobody is
  created on first sign-in.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.oidc.core import CodeIDToken
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

with warnings.catch_warnings():
    # authlib >= 1.9 prefers the httpx2 package and warns when it falls back to httpx, which Hub
    # uses everywhere; the client below works the same on either.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

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


def _client(request: Request[Any, Any, Any]) -> AsyncOAuth2Client:
    """authlib's OAuth 2 client for the configured provider: PKCE S256, our redirect URI, client
    authentication as configured."""
    settings = staff_service.settings_of(request.app.state.hub)
    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
        token_endpoint_auth_method=settings.oidc_token_auth_method, redirect_uri=_redirect_uri(request),
        scope="openid email profile", code_challenge_method="S256", timeout=10)


async def exchange_code(request: Request[Any, Any, Any], token_endpoint: str, code: str,
                        verifier: str) -> dict[str, Any]:
    """The token response for ``code`` (RFC 6749 §4.1.3 with the PKCE ``code_verifier``)."""
    try:
        async with _client(request) as client:
            return dict(await client.fetch_token(token_endpoint, grant_type="authorization_code", code=code,
                                                 code_verifier=verifier))
    except AuthlibBaseError as exc:  # an RFC 6749 §5.2 error answer
        raise OidcError(f"the code was refused ({exc.error})") from exc
    except httpx.HTTPStatusError as exc:
        raise OidcError(f"the code was refused ({exc.response.status_code})") from exc
    except httpx.HTTPError as exc:
        raise OidcError(f"the provider's token endpoint cannot be reached ({type(exc).__name__})") from exc


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
    async with _client(request) as client:
        url, _state = client.create_authorization_url(document["authorization_endpoint"], state=state,
                                                      code_verifier=verifier, nonce=nonce)
    return Redirect(url, status_code=303)


async def _take_state(request: Request[Any, Any, Any], state: str) -> dict[str, Any] | None:
    name = f"hub:workbench:oidc:{state}"
    async with request.app.state.hub.redis.pipeline(transaction=True) as pipe:
        pipe.get(name)
        pipe.delete(name)
        raw, _deleted = await pipe.execute()
    return None if raw is None else json.loads(raw)


def check_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str,
                   access_token: str | None = None) -> dict[str, Any]:
    """The ID token's claims, once its signature (joserfc, against the provider's keys) and its
    claims (authlib's ``CodeIDToken``: issuer, audience, times, subject, nonce, ``azp``,
    ``at_hash``) are right."""
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
        claims = CodeIDToken(
            token.claims, dict(token.header),
            options={"iss": {"essential": True, "value": issuer},
                     "aud": {"essential": True, "value": client_id}},
            params={"nonce": nonce, "client_id": client_id, "access_token": access_token})
        claims.validate(leeway=60)
    except (JoseError, ValueError) as exc:
        raise OidcError(f"the ID token was refused ({type(exc).__name__}: {exc})") from exc
    return dict(claims)


def vouched_email(claims: dict[str, Any], *, trust_unverified: bool) -> str | None:
    """The email the provider vouches for: ``email_verified`` must be true, or absent when the
    provider's addresses are trusted (HUB_WORKBENCH_OIDC_TRUST_UNVERIFIED_EMAIL)."""
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or not email:
        return None
    if verified in (True, "true") or (verified is None and trust_unverified):  # "true": AWS Cognito
        return email
    return None


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
                                    client_id=settings.oidc_client_id, nonce=kept["nonce"],
                                    access_token=tokens.get("access_token"))
        except OidcError:
            # The provider may have rotated its keys since they were cached: read them once more.
            _document, keys = await provider(settings.oidc_issuer, refresh=True)
            claims = check_id_token(tokens["id_token"], keys, issuer=settings.oidc_issuer,
                                    client_id=settings.oidc_client_id, nonce=kept["nonce"],
                                    access_token=tokens.get("access_token"))
    except OidcError as exc:
        log.warning("oidc_sign_in_refused", reason=str(exc))
        return _failed(request, str(exc))
    email = vouched_email(claims, trust_unverified=settings.oidc_trust_unverified_email)
    if email is None:
        return _failed(request, "the provider did not vouch for an email address", 403)
    member = await staff_service.staff_by_email(hub, email)
    if member is None:
        log.info("oidc_sign_in_unknown_staff", email=email)
        return _failed(request, f"{email} is not a Hub staff member here; ask an administrator", 403)
    return await signed_in(request, member, kept["next"])


ROUTES = (start, callback)
