"""Journey Builder's JWTs: with ``useJwt`` the whole body is a compact JWS, HS256, keyed with the
installed package's JWT signing secret (PROTOCOLS.md §6).

Only HS256 is accepted (``alg: none`` and every other algorithm are refused before any key is
used); ``exp`` and ``nbf`` are honoured when present, with a small leeway for clock skew.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import msgspec
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS256"
LEEWAY_SECONDS = 60


class JwtError(ValueError):
    """A body that is not a JWT this environment's secret signed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _header(token: str) -> dict[str, Any]:
    encoded = token.split(".", 1)[0]
    try:
        header = msgspec.json.decode(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, msgspec.DecodeError):
        raise JwtError("malformed JWT header") from None
    if not isinstance(header, dict):
        raise JwtError("malformed JWT header")
    return header


def verify(raw: bytes, secret: bytes, *, now: float | None = None) -> dict[str, Any]:
    """The payload of the compact JWT ``raw`` signed with ``secret``, or :class:`JwtError`."""
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise JwtError("the body is not a compact JWT") from None
    if token.count(".") != 2:
        raise JwtError("the body is not a compact JWT (three base64url parts)")
    alg = _header(token).get("alg")
    if alg != ALGORITHM:
        raise JwtError(f"alg {alg!r} is not accepted: Journey Builder signs with {ALGORITHM}")
    try:
        payload = jws.deserialize_compact(token, OctKey.import_key(secret), algorithms=[ALGORITHM]).payload
    except JoseError:
        raise JwtError("bad signature: not signed with this environment's JWT signing secret") from None
    except ValueError:
        raise JwtError("malformed JWT") from None
    try:
        claims = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raise JwtError("the JWT payload is not JSON") from None
    if not isinstance(claims, dict):
        raise JwtError("the JWT payload must be a JSON object")
    clock = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None:
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise JwtError("exp must be a number of seconds")
        if exp + LEEWAY_SECONDS < clock:
            raise JwtError("the JWT has expired (exp)")
    if nbf is not None and isinstance(nbf, int | float) and nbf - LEEWAY_SECONDS > clock:
        raise JwtError("the JWT is not valid yet (nbf)")
    return claims


def sign(claims: dict[str, Any], secret: bytes | str, alg: str = ALGORITHM) -> str:
    """A compact JWT as Journey Builder makes them (tests, benchmarks, the docs' curl example)."""
    key = OctKey.import_key(secret.encode() if isinstance(secret, str) else secret)
    return jws.serialize_compact({"alg": alg, "typ": "JWT"}, msgspec.json.encode(claims), key,
                                 algorithms=[alg])
