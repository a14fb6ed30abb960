"""Signed inbound triggers: secrets, sealing them at rest, checking signatures, refusing replays.

The secret format, Standard Webhooks signing and sealing are shared with outbound webhooks
(``outbound_signing`` builds on this module).

Two header schemes, one secret (``whsec_<base64 key>``; the HMAC key is the decoded part):

- Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (several,
  space-separated, while keys rotate).
- ``Hub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` (several ``v1=``
  allowed), in the spirit of Stripe's ``Stripe-Signature``.

A request is refused (401) when no signature matches, when its timestamp is further than the
tolerance from now, or when the same signature was accepted within the replay window (Redis
remembers it). A sender that retries signs again with a new timestamp, as both schemes expect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.sealing import Sealer as _Sealer

SECRET_PREFIX = "whsec_"
MAX_SIGNATURES = 10


class SignatureError(Exception):
    """The request's signature is missing, wrong, stale or replayed: ``field`` and ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


# --- sealing secrets at rest ----------------------------------------------------------------


class Sealer(_Sealer):
    """The sealer of inbound trigger secrets (see :mod:`hub.sealing`)."""

    def __init__(self, hub_secret_key: str, purpose: bytes = b"hub webhooks inbound secrets v1") -> None:
        super().__init__(hub_secret_key, purpose)


def sealer(hub: Any) -> Sealer:
    found = getattr(hub, "_webhooks_inbound_sealer", None)
    if found is None:
        found = Sealer(hub.secret_key)
        hub._webhooks_inbound_sealer = found
    return found


# --- checking a signature -------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    scheme: str
    digest: str  # hex of the matching signature: the replay key
    message_id: str | None  # webhook-id (Standard Webhooks), a de-duplication key


def _timestamp(value: str, field: str) -> int:
    if not value.isdigit() or len(value) > 12:
        raise SignatureError(field, "the timestamp must be Unix seconds")
    return int(value)


def _fresh(timestamp: int, now: float, tolerance: int, field: str) -> None:
    if abs(now - timestamp) > tolerance:
        side = "old" if timestamp < now else "far in the future"
        raise SignatureError(field, f"stale: the timestamp is {abs(int(now) - timestamp)} s {side}; "
                                    f"requests must be signed within {tolerance} s "
                                    "(HUB_WEBHOOKS_INBOUND_SIGNATURE_TOLERANCE_SECONDS)")


def verify(headers: Mapping[str, str], body: bytes, keys: list[bytes], *, now: float,
           tolerance: int) -> Verified:
    """Check ``Hub-Signature`` or the Standard Webhooks headers against any of ``keys``."""
    if "hub-signature" in headers:
        return _verify_hub(headers["hub-signature"], body, keys, now, tolerance)
    if "webhook-signature" in headers:
        return _verify_standard(headers, body, keys, now, tolerance)
    raise SignatureError("header.webhook-signature",
                         "required: this trigger is signed; send webhook-id, webhook-timestamp and "
                         "webhook-signature (Standard Webhooks) or Hub-Signature")


def _verify_hub(header: str, body: bytes, keys: list[bytes], now: float, tolerance: int) -> Verified:
    field = "header.hub-signature"
    parts = [p.strip().partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    given = [v.lower() for k, _, v in parts if k == "v1"][:MAX_SIGNATURES]
    if len(stamps) != 1 or not given:
        raise SignatureError(field, "must be t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">")
    timestamp = _timestamp(stamps[0], field)
    signed = stamps[0].encode() + b"." + body
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
        for candidate in given:
            if hmac.compare_digest(expected, candidate):
                _fresh(timestamp, now, tolerance, field)
                return Verified("hub", expected, None)
    raise SignatureError(field, "no signature matches the body with the trigger's secret")


def _verify_standard(headers: Mapping[str, str], body: bytes, keys: list[bytes], now: float,
                     tolerance: int) -> Verified:
    message_id = headers.get("webhook-id", "")
    if not message_id or len(message_id) > 255:
        raise SignatureError("header.webhook-id", "required with webhook-signature (1-255 characters)")
    stamp = headers.get("webhook-timestamp", "")
    if not stamp:
        raise SignatureError("header.webhook-timestamp", "required with webhook-signature")
    timestamp = _timestamp(stamp, "header.webhook-timestamp")
    given = []
    for item in headers["webhook-signature"].split()[:MAX_SIGNATURES]:
        version, _, value = item.partition(",")
        if version == "v1":
            try:
                given.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    if not given:
        raise SignatureError("header.webhook-signature", "must be v1,<base64 HMAC-SHA256> (space-separated)")
    signed = f"{message_id}.{stamp}.".encode() + body
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for candidate in given:
            if hmac.compare_digest(expected, candidate):
                _fresh(timestamp, now, tolerance, "header.webhook-timestamp")
                return Verified("standard", expected.hex(), message_id)
    raise SignatureError("header.webhook-signature",
                         "no signature matches the body with the trigger's secret")


def sign_hub(secret: str, body: bytes, timestamp: int) -> str:
    """A ``Hub-Signature`` header value (for senders, tests and the docs)."""
    digest = hmac.new(secret_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sign_standard(secret: str, message_id: str, body: bytes, timestamp: int) -> str:
    """A ``webhook-signature`` header value (Standard Webhooks)."""
    digest = hmac.new(secret_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


async def remember(redis: Any, trigger_id: str, verified: Verified, tolerance: int) -> None:
    """Refuse a signature already accepted within the window (a replay); remember this one.

    A timestamp is accepted up to ``tolerance`` on either side of now, so a signature stays
    usable for at most twice that: the key lives that long.
    """
    key = f"hub:webhooks:in:replay:{trigger_id}:{verified.digest}"
    if not await redis.set(key, b"1", nx=True, ex=2 * tolerance + 5):
        field = "header.hub-signature" if verified.scheme == "hub" else "header.webhook-signature"
        raise SignatureError(field, "replayed: this exact signed request was already received; "
                                    "sign a retry again with a new timestamp")


async def forget(redis: Any, trigger_id: str, verified: Verified) -> None:
    """Let a request that was not accepted (4xx/5xx after the check) be sent again as it was."""
    await redis.delete(f"hub:webhooks:in:replay:{trigger_id}:{verified.digest}")
