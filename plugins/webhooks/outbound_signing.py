"""Signing secrets of outbound webhooks and the Standard Webhooks signature.

A secret is shown to the API client once, as ``whsec_<base64 key>``; the HMAC key is the decoded
part. Hub must keep the key to sign, so it stores it encrypted (AES-GCM under a key derived from
``HUB_SECRET_KEY``): a database dump alone does not reveal it. The primitives are the inbound
triggers' (:mod:`hub_plugins.webhooks.inbound_signing`): one secret format, one signature.
"""

from __future__ import annotations

from hub_plugins.webhooks.inbound_signing import SECRET_PREFIX as PREFIX
from hub_plugins.webhooks.inbound_signing import Sealer, new_secret, secret_key, sign_standard

__all__ = ["PREFIX", "SecretBox", "new_secret", "secret_key", "sign", "signature_header"]

_PURPOSE = b"hub webhooks outbound secret v1"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">``."""
    return sign_standard(secret, msg_id, body, timestamp)


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


class SecretBox:
    """Encrypts subscription signing secrets for storage, with a key derived from Hub's secret key."""

    def __init__(self, hub_secret_key: str) -> None:
        self._sealer = Sealer(hub_secret_key, _PURPOSE)

    def seal(self, secret: str) -> str:
        return self._sealer.seal(secret, _PURPOSE.decode())

    def open(self, stored: str) -> str:
        return self._sealer.unseal(stored, _PURPOSE.decode())
