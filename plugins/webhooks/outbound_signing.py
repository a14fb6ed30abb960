"""Signing secrets of outbound webhooks and the Standard Webhooks signature.

A secret is shown to the API client once, as ``whsec_<base64 key>``; the HMAC key is the decoded
part. Hub must keep the key to sign, so it stores it encrypted (AES-GCM under a key derived from
``HUB_SECRET_KEY``): a database dump alone does not reveal it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "whsec_"
KEY_BYTES = 32
_AAD = b"hub webhooks outbound secret v1"


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">``."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


class SecretBox:
    """Encrypts signing secrets for storage, with a key derived from Hub's secret key."""

    def __init__(self, hub_secret_key: str) -> None:
        derived = hmac.new(hub_secret_key.encode(), _AAD, hashlib.sha256).digest()
        self._aead = AESGCM(derived)

    def seal(self, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), _AAD)
        return "v1:" + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str) -> str:
        raw = base64.b64decode(stored.removeprefix("v1:"))
        return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
