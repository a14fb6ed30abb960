"""End-user authentication: JWTs the customer's backend signs for its users (PROTOCOLS.md §3).

An environment registers SDK keys (``/v1/{env}/sdk-keys`` or ``hub sdk-keys add``): a PEM public
key or a JWKS URL, each with the issuer and audience its tokens carry. A token is accepted when
it is signed RS256 or ES256 by a key registered for its ``iss``, names that key's audience in
``aud``, has not expired (``exp``, with ``HUB_SDK_STREAMS_JWT_LEEWAY_SECONDS`` of skew) and names
the user in ``sub``. Anything else is a 401 that says what is wrong.

Polling apps present the same token many times: a process keeps what it verified (and the
environment's keys) for ``HUB_SDK_STREAMS_KEY_CACHE_SECONDS``, so a repeated token costs a dict
lookup, and a deleted key stops working everywhere within that time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import httpx
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from sqlalchemy import bindparam, delete, func, select

from hub.api.problems import FieldError, Problem
from hub.core.clock import now
from hub.core.customers import FieldIssue, check_user_id
from hub.logging import get_logger
from hub.net import UnsafeURL, check_url
from hub.services import customers
from hub_plugins.sdk_streams.tables import sdk_key

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

ALGORITHMS = ("RS256", "ES256")
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="hub-sdk"'}
MAX_TOKEN_BYTES = 8192
MAX_JWKS_BYTES = 65_536
TOKEN_CACHE_SIZE = 20_000
SEEN_CACHE_SIZE = 100_000
K = sdk_key.c


class EndUser(msgspec.Struct, frozen=True):
    """Who an SDK request is for: the environment (as in the path), the user id (``sub``) and
    every claim of the verified token."""

    env: str
    user_id: str
    claims: dict[str, Any]


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers=dict(WWW_AUTHENTICATE),
                   errors=[FieldError("header.authorization", detail)])


class SdkKeyError(ValueError):
    """A key registration that cannot be accepted; ``issues`` name the fields."""

    def __init__(self, issues: list[FieldIssue], status: int = 422):
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in issues))
        self.issues = issues
        self.status = status


# --- per-process caches ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    id: str
    kind: str
    issuer: str
    audience: str
    public: Any  # joserfc key for kind pem
    jwks_url: str | None


@dataclass
class _Caches:
    keys: dict[str, tuple[float, list[_Key]]] = field(default_factory=dict)
    jwks: dict[str, tuple[float, list[Any]]] = field(default_factory=dict)
    jwks_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    tokens: OrderedDict[tuple[str, str], tuple[EndUser, float, float]] = field(default_factory=OrderedDict)
    seen: dict[tuple[str, str], float] = field(default_factory=dict)


_CACHES: weakref.WeakKeyDictionary[Any, _Caches] = weakref.WeakKeyDictionary()


def _caches(hub: Hub) -> _Caches:
    found = _CACHES.get(hub)
    if found is None:
        found = _CACHES[hub] = _Caches()
    return found


def forget_keys(hub: Hub, env: str) -> None:
    """Drop this process's cached keys and verified tokens of ``env`` (after a key changed)."""
    caches = _caches(hub)
    caches.keys.pop(env, None)
    for cache_key in [k for k in caches.tokens if k[0] == env]:
        del caches.tokens[cache_key]


# --- keys: parsing, storing, loading --------------------------------------------------------


def parse_public_pem(pem: str) -> RSAKey | ECKey:
    """A PEM public key usable for RS256 (RSA, at least 2048 bits) or ES256 (EC P-256)."""
    if "PRIVATE KEY" in pem:
        raise ValueError("is a private key: register the public key only, and keep the private "
                         "key on your backend")
    for key_type in (RSAKey, ECKey):
        try:
            key = key_type.import_key(pem)
        except (JoseError, ValueError, TypeError):
            continue
        if key.is_private:
            raise ValueError("is a private key: register the public key only")
        if isinstance(key, ECKey) and key.curve_name != "P-256":
            raise ValueError(f"is an EC key on {key.curve_name}; ES256 needs P-256")
        if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:
            raise ValueError("is an RSA key shorter than 2048 bits")
        return key
    raise ValueError("is not a PEM public key (-----BEGIN PUBLIC KEY-----) of type RSA or EC P-256")


def _algorithms(row: Any) -> list[str]:
    if row["kind"] == "pem":
        return ["RS256"] if isinstance(parse_public_pem(row["pem"]), RSAKey) else ["ES256"]
    return list(ALGORITHMS)


def key_json(row: Any) -> dict[str, Any]:
    """An SDK key as the API shows it."""
    created = row["created_at"]
    return {"keyId": row["id"], "kind": row["kind"], "name": row["name"], "issuer": row["issuer"],
            "audience": row["audience"], "jwksUrl": row["jwks_url"], "publicKeyPem": row["pem"],
            "algorithms": _algorithms(row),
            "createdAt": created.isoformat().replace("+00:00", "Z") if created else None}


def _check_text(value: Any, name: str, limit: int) -> list[FieldIssue]:
    if not isinstance(value, str) or not value.strip():
        return [FieldIssue(name, "must be a non-empty string")]
    if len(value) > limit or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return [FieldIssue(name, f"must be at most {limit} characters without control characters")]
    return []


async def add_key(hub: Hub, env: str, *, issuer: str, audience: str, pem: str | None = None,
                  jwks_url: str | None = None, name: str = "") -> dict[str, Any]:
    """Register a PEM public key or a JWKS URL for ``env``'s end-user tokens.

    A JWKS URL must be https (or http) to a public address unless ``HUB_ALLOW_PRIVATE_URLS``,
    and is fetched once now so a wrong URL is refused at once. Raises :class:`SdkKeyError`.
    """
    issues = _check_text(issuer, "issuer", 255) + _check_text(audience, "audience", 255)
    if name and (len(name) > 200 or "\x00" in name):
        issues.append(FieldIssue("name", "must be at most 200 characters"))
    if (pem is None) == (jwks_url is None):
        issues.append(FieldIssue("pem", "give exactly one of pem and jwksUrl"))
    elif pem is not None:
        try:
            if len(pem) > 16_384:
                raise ValueError("is longer than 16384 characters")
            parse_public_pem(pem)
        except ValueError as exc:
            issues.append(FieldIssue("pem", str(exc)))
    elif jwks_url is not None:
        issues += await _check_jwks_url(hub, jwks_url)
    if issues:
        raise SdkKeyError(issues)
    row = {"id": str(uuid.uuid4()), "environment_id": env, "kind": "pem" if pem is not None else "jwks",
           "pem": pem.strip() + "\n" if pem is not None else None, "jwks_url": jwks_url,
           "issuer": issuer, "audience": audience, "name": name or issuer, "created_at": now()}
    limit = hub.plugin_settings["sdk_streams"].max_keys
    async with hub.db.begin() as conn:
        count = (await conn.execute(select(func.count()).select_from(sdk_key)
                                    .where(K.environment_id == env))).scalar_one()
        if count >= limit:
            raise SdkKeyError([FieldIssue("body", f"environment {env!r} already has {count} SDK keys "
                                                  f"(HUB_SDK_STREAMS_MAX_KEYS={limit}); delete one first")],
                              status=409)
        await conn.execute(sdk_key.insert().values(**row))
    forget_keys(hub, env)
    return key_json(row)


async def _check_jwks_url(hub: Hub, url: str) -> list[FieldIssue]:
    if not isinstance(url, str) or len(url) > 2048:
        return [FieldIssue("jwksUrl", "must be an http(s) URL of at most 2048 characters")]
    try:
        keys = await fetch_jwks(hub, url)
    except (UnsafeURL, ValueError) as exc:
        return [FieldIssue("jwksUrl", str(exc))]
    if not keys:
        return [FieldIssue("jwksUrl", "holds no RSA or EC P-256 public key")]
    return []


async def list_keys(hub: Hub, env: str) -> list[dict[str, Any]]:
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(sdk_key).where(K.environment_id == env)
                                   .order_by(K.created_at, K.id))).mappings().all()
    return [key_json(r) for r in rows]


async def delete_key(hub: Hub, env: str, key_id: str) -> bool:
    """Delete one key; tokens it signed stop working (in other processes within the cache time)."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(sdk_key).where(K.environment_id == env, K.id == key_id))
    forget_keys(hub, env)
    return bool(result.rowcount)


_LOAD_KEYS = select(K.id, K.kind, K.issuer, K.audience, K.pem, K.jwks_url).where(
    K.environment_id == bindparam("env"))


async def _env_keys(hub: Hub, env: str) -> list[_Key]:
    caches = _caches(hub)
    ttl = hub.plugin_settings["sdk_streams"].key_cache_seconds
    cached = caches.keys.get(env)
    if cached is not None and time.monotonic() - cached[0] < ttl:
        return cached[1]
    keys = []
    for row in await hub.db.read(_LOAD_KEYS, {"env": env}):
        try:
            public = parse_public_pem(row["pem"]) if row["kind"] == "pem" else None
        except ValueError:  # checked when registered: only a hand-edited row can fail here
            log.warning("sdk_key_unusable", env=env, key_id=row["id"])
            continue
        keys.append(_Key(row["id"], row["kind"], row["issuer"], row["audience"], public, row["jwks_url"]))
    caches.keys[env] = (time.monotonic(), keys)
    return keys


# --- JWKS -----------------------------------------------------------------------------------


def _import_jwks(document: Any) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('is not a JWKS document ({"keys": [...]})')
    keys = []
    for raw in document["keys"]:
        if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC"):
            continue
        public = {k: v for k, v in raw.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            key = (RSAKey if public["kty"] == "RSA" else ECKey).import_key(public)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, ECKey) and key.curve_name != "P-256":
            continue
        keys.append(key)
    return keys


async def fetch_jwks(hub: Hub, url: str, *, force: bool = False) -> list[Any]:
    """The usable public keys at a JWKS URL, fetched at most once per
    ``HUB_SDK_STREAMS_JWKS_CACHE_SECONDS`` per process (``force``: now, for an unknown ``kid``).

    Raises :class:`hub.net.UnsafeURL` or ValueError saying why the keys cannot be had.
    """
    settings = hub.plugin_settings["sdk_streams"]
    caches = _caches(hub)
    cached = caches.jwks.get(url)
    fresh_for = 30.0 if force else settings.jwks_cache_seconds  # a forced refetch still waits 30 s
    if cached is not None and time.monotonic() - cached[0] < min(fresh_for, settings.jwks_cache_seconds):
        return cached[1]
    lock = caches.jwks_locks.setdefault(url, asyncio.Lock())
    async with lock:
        cached = caches.jwks.get(url)
        if cached is not None and time.monotonic() - cached[0] < min(fresh_for, settings.jwks_cache_seconds):
            return cached[1]
        await check_url(url, allow_private=hub.settings.allow_private_urls)
        try:
            async with httpx.AsyncClient(timeout=settings.jwks_timeout_seconds,
                                         follow_redirects=False) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ValueError(f"could not be fetched: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ValueError(f"answered HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"is larger than {MAX_JWKS_BYTES} bytes")
        try:
            keys = _import_jwks(json.loads(response.content))
        except json.JSONDecodeError:
            raise ValueError("is not JSON") from None
        caches.jwks[url] = (time.monotonic(), keys)
        return keys


# --- verifying a token ----------------------------------------------------------------------


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = token.split(".")
    if len(parts) != 3:
        raise unauthorized("the token is not a JWT (header.payload.signature)")
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, UnicodeDecodeError):
        raise unauthorized("the token is not a JWT: its header or payload is not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise unauthorized("the token is not a JWT: its header and payload must be JSON objects")
    return header, claims


async def _candidates(hub: Hub, key: _Key, header: dict[str, Any]) -> list[Any]:
    """The public keys of ``key`` that may have signed a token with ``header``; raises
    ValueError (or UnsafeURL) when a JWKS cannot be had."""
    if key.kind == "pem":
        return [key.public]
    assert key.jwks_url is not None
    kid = header.get("kid")
    keys = await fetch_jwks(hub, key.jwks_url)
    if kid is not None and not any(k.kid == kid for k in keys):
        keys = await fetch_jwks(hub, key.jwks_url, force=True)  # the issuer rotated its keys
    return [k for k in keys if kid is None or k.kid == kid]


def _expected_type(alg: str) -> type:
    return RSAKey if alg == "RS256" else ECKey


async def verify_token(hub: Hub, env: str, token: str) -> dict[str, Any]:
    """The claims of ``token`` if an SDK key of ``env`` signed it and its claims hold; else a
    401 :class:`Problem` saying what is wrong."""
    if len(token) > MAX_TOKEN_BYTES:
        raise unauthorized(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
    header, unverified = _peek(token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise unauthorized(f"the token's alg {alg!r} is not accepted: sign with RS256 or ES256")
    keys = await _env_keys(hub, env)
    if not keys:
        raise unauthorized(f"environment {env!r} has no SDK keys (POST /v1/{env}/sdk-keys)")
    issuer = unverified.get("iss")
    matching = [k for k in keys if k.issuer == issuer]
    if not matching:
        raise unauthorized(f"unknown issuer {issuer!r}: no SDK key of environment {env!r} is "
                           "registered for it")
    claims, key, unavailable = None, None, None
    for candidate in matching:
        try:
            publics = await _candidates(hub, candidate, header)
        except (UnsafeURL, ValueError) as exc:
            log.warning("sdk_jwks_unavailable", url=candidate.jwks_url, error=str(exc))
            unavailable = f"the keys at {candidate.jwks_url} are unavailable: {exc}"
            continue
        for public in publics:
            if not isinstance(public, _expected_type(alg)):
                continue
            try:
                claims = jwt.decode(token, public, algorithms=[alg]).claims
            except (JoseError, ValueError, TypeError):
                continue
            key = candidate
            break
        if key is not None:
            break
    if claims is None or key is None:
        raise unauthorized(unavailable
                           or f"the signature matches no SDK key registered for issuer {issuer!r}")
    _check_claims(hub, claims, key)
    return claims


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unauthorized(f"the {name} claim must be a number (seconds since the epoch)")
    return float(value)


def _check_claims(hub: Hub, claims: dict[str, Any], key: _Key) -> None:
    leeway = hub.plugin_settings["sdk_streams"].jwt_leeway_seconds
    current = now().timestamp()
    exp = _number(claims, "exp")
    if exp is None:
        raise unauthorized("the token has no exp claim: end-user tokens must expire")
    if current > exp + leeway:
        raise unauthorized("the token has expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and current < nbf - leeway:
        raise unauthorized("the token is not valid yet (nbf is in the future)")
    iat = _number(claims, "iat")
    if iat is not None and current < iat - leeway:
        raise unauthorized("the token was issued in the future (iat); check the signer's clock")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if key.audience not in audiences:
        raise unauthorized(f"wrong audience {audience!r}: tokens for this key must have aud "
                           f"{key.audience!r}")
    issues = check_user_id(claims.get("sub"), "sub")
    if issues:
        raise unauthorized(f"the sub claim (the user id) {issues[0].reason}")


async def authenticate(hub: Hub, env: str, token: str) -> EndUser:
    """The end user a token is for (see the module docstring); creates or touches the customer.

    Raises a 401 :class:`hub.api.problems.Problem` with a detail saying what is wrong.
    """
    caches = _caches(hub)
    settings = hub.plugin_settings["sdk_streams"]
    cached = caches.tokens.get((env, token))
    if cached is not None:
        user, expires, stored = cached
        if now().timestamp() <= expires and time.monotonic() - stored < settings.key_cache_seconds:
            await _touch(hub, caches, user)
            return user
        del caches.tokens[(env, token)]
    claims = await verify_token(hub, env, token)
    user = EndUser(env=env, user_id=claims["sub"], claims=dict(claims))
    caches.tokens[(env, token)] = (user, float(claims["exp"]) + settings.jwt_leeway_seconds, time.monotonic())
    if len(caches.tokens) > TOKEN_CACHE_SIZE:
        caches.tokens.popitem(last=False)
    await _touch(hub, caches, user)
    return user


async def _touch(hub: Hub, caches: _Caches, user: EndUser) -> None:
    """Create or touch the customer (last seen), at most once per interval across processes."""
    interval = hub.plugin_settings["sdk_streams"].seen_interval_seconds
    cache_key = (user.env, user.user_id)
    last = caches.seen.get(cache_key)
    if last is not None and time.monotonic() - last < interval:
        return
    if len(caches.seen) > SEEN_CACHE_SIZE:
        caches.seen.clear()
    caches.seen[cache_key] = time.monotonic()
    redis_key = f"sdk_streams:seen:{user.env}:{user.user_id}"
    if not await hub.redis.set(redis_key, "1", nx=True, ex=max(1, interval)):
        return  # another process (or this one, earlier) touched it within the interval
    try:
        await customers.mark_seen(hub, user.env, user.user_id)
    except Exception:
        await hub.redis.delete(redis_key)
        caches.seen.pop(cache_key, None)
        raise


def forget_user(hub: Hub, env: str, user_id: str) -> None:
    """Forget this process's note that the user was seen (their profile was erased)."""
    _caches(hub).seen.pop((env, user_id), None)


# --- the HTTP dependency --------------------------------------------------------------------


def bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("an end-user token is required: Authorization: Bearer <JWT signed by "
                           "your backend>")
    return token


async def end_user_guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Authenticate before anything else of the request is looked at (its body included)."""
    hub = connection.app.state.hub
    env = connection.path_params["env"]
    user = await authenticate(hub, env, bearer_token(connection.headers.get("authorization", "")))
    connection.scope.setdefault("state", {})[_STATE_KEY] = user


_STATE_KEY = "sdk_streams_end_user"


def _provide_end_user(request: Request[Any, Any, Any], hub: NamedDependency[Any]) -> EndUser:
    # ``hub`` is not used: depending on it orders the two dependencies, so Litestar resolves
    # them one after the other instead of starting a task group (two tasks) on every request.
    user = request.scope.get("state", {}).get(_STATE_KEY)
    if not isinstance(user, EndUser):  # a route given the dependency without the guard
        raise unauthorized("an end-user token is required")
    return user


SDK_ROUTE: dict[str, Any] = {"opt": {"auth": "end_user", "authenticate": end_user_guard},
                             "dependencies": {"user": Provide(_provide_end_user, sync_to_thread=False)}}
"""Keyword arguments for an end-user route (``@get(path, **SDK_ROUTE, ...)``): the guard answers
401 unless the request carries a valid end-user token, and the handler gets ``user: EndUserDep``."""

EndUserDep: TypeAlias = NamedDependency[EndUser]
