"""Secrets at rest: AES-GCM under a key derived from ``HUB_SECRET_KEY`` and a purpose.

Plugins that store credentials (webhook signing secrets, push provider keys) seal them with a
:class:`Sealer` of their own purpose, so a database dump alone reveals none of them and a value
sealed for one purpose cannot be unsealed for another. ``context`` binds a sealed value to the
row it belongs to (its id): copying it onto another row makes it unreadable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_PREFIX = "v1."


class Sealer:
    """Seal and unseal text under ``HUB_SECRET_KEY`` for one ``purpose``. Changing
    ``HUB_SECRET_KEY`` makes stored secrets unreadable: re-enter them."""

    def __init__(self, hub_secret_key: str, purpose: bytes) -> None:
        key = hmac.new(hub_secret_key.encode(), purpose, hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, context: str) -> str:
        """The secret, or ``ValueError`` when it was sealed under another key, purpose or context."""
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX))
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise ValueError("the stored secret cannot be read with this HUB_SECRET_KEY") from exc
