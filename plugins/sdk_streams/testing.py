"""Test helpers: an end-user token signer registered as an SDK key of an environment.

::

    signer = await make_signer(hub, "acme")
    headers = {"Authorization": f"Bearer {signer.token('u1')}"}

``tests/plugins/sdk_streams/conftest.py`` offers it as the ``sdk_signer`` fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from hub.core.clock import now
from hub_plugins.sdk_streams.auth import add_key


@dataclass
class Signer:
    """Signs end-user JWTs the way a customer's backend would, with a registered key."""

    env: str
    alg: str
    issuer: str
    audience: str
    private_key: RSAKey | ECKey
    key_id: str

    @property
    def public_pem(self) -> str:
        return self.private_key.as_pem(private=False).decode()

    def token(self, user_id: str, *, expires_in: int = 300, **claims: Any) -> str:
        """A token for ``user_id`` that expires ``expires_in`` seconds from Hub's clock; ``claims``
        add or override claims (``aud="other"``, ``exp=None`` leaves one out)."""
        issued = int(now().timestamp())
        body: dict[str, Any] = {"sub": user_id, "iss": self.issuer, "aud": self.audience,
                                "iat": issued, "exp": issued + expires_in, **claims}
        return self.sign({k: v for k, v in body.items() if v is not None})

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """Any claims, signed with this key (``header`` adds to ``{"alg", "typ"}``)."""
        return jwt.encode({"alg": self.alg, "typ": "JWT", **(header or {})}, claims, self.private_key)


def new_private_key(alg: str) -> RSAKey | ECKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "RS256":
        return RSAKey.generate_key(2048)
    raise ValueError(f"alg must be ES256 or RS256, not {alg!r}")


async def make_signer(hub: Any, env: str, *, alg: str = "ES256", issuer: str = "https://bank.example",
                      audience: str = "hub-sdk") -> Signer:
    """A new key pair whose public key is registered for ``env`` (as ``POST /v1/{env}/sdk-keys``
    would), and a :class:`Signer` holding its private key."""
    private = new_private_key(alg)
    registered = await add_key(hub, env, issuer=issuer, audience=audience,
                               pem=private.as_pem(private=False).decode(), name=f"test {alg}")
    return Signer(env, alg, issuer, audience, private, registered["keyId"])
