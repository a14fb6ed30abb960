"""An environment's APNs configuration: the auth key (.p8), validated on save, sealed at rest.

:func:`save` checks the key, key id, team id, topic and environment field by field and raises
:class:`ConfigError` naming the field; :func:`view` is what the API and CLI show (never the
key); :func:`load` gives the sender an :class:`ApnsConfig` with the key unsealed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import delete, select

from hub.core.clock import now
from hub.db import upsert_statement
from hub.sealing import Sealer
from hub_plugins.push_apns.tables import config as config_table

if TYPE_CHECKING:
    from hub.app import Hub

C = config_table.c
ENVIRONMENTS = ("sandbox", "production")
SEALER_PURPOSE = b"hub push apns v1"
_ID = re.compile(r"[A-Za-z0-9]{10}")
_BUNDLE_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
MAX_TOPIC = 255


class ConfigError(ValueError):
    """A configuration that cannot be saved; ``field`` is its name in the request body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ApnsConfig:
    """What the sender needs, the key unsealed (never logged, never returned)."""

    environment_id: str
    key_id: str
    team_id: str
    topic: str
    environment: str
    key_p8: str = ""

    def __repr__(self) -> str:  # the key stays out of tracebacks and debug output
        return (f"ApnsConfig(environment_id={self.environment_id!r}, key_id={self.key_id!r}, "
                f"team_id={self.team_id!r}, topic={self.topic!r}, environment={self.environment!r})")

    @property
    def credential_key(self) -> str:
        """Identifies the credential (team, key id, key) without revealing the key: provider
        tokens are cached under it."""
        digest = hashlib.sha256(self.key_p8.encode()).hexdigest()[:16]
        return f"{self.team_id}|{self.key_id}|{digest}"


def _sealer(hub: Hub) -> Sealer:
    return Sealer(hub.secret_key, purpose=SEALER_PURPOSE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def check_key(pem: Any) -> EllipticCurvePrivateKey:
    """The P-256 key of an unencrypted PEM (Apple's .p8), or :class:`ConfigError` (the message
    never quotes the key)."""
    field = "keyP8"
    if pem is None:
        raise ConfigError(field, "required")
    if not isinstance(pem, str) or not pem.strip():
        raise ConfigError(field, "must be the text of the .p8 file")
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem:
        raise ConfigError(field, "is encrypted; give the unencrypted .p8 file Apple let you download")
    if "-----BEGIN" not in pem:
        raise ConfigError(field, "must be a PEM private key (-----BEGIN PRIVATE KEY-----), the .p8 file")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(field, "is not a readable unencrypted PEM private key") from None
    if not isinstance(key, EllipticCurvePrivateKey) or not isinstance(key.curve, SECP256R1):
        raise ConfigError(field, "must be an EC P-256 key (APNs auth keys are; ES256 signs with them)")
    return key


def _id(value: Any, field: str, what: str) -> str:
    if value is None:
        raise ConfigError(field, "required")
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ConfigError(field, f"must be 10 letters and digits ({what})")
    return value


def check_topic(value: Any, field: str = "topic") -> str:
    if value is None:
        raise ConfigError(field, "required")
    if not isinstance(value, str) or len(value) > MAX_TOPIC or not _BUNDLE_ID.fullmatch(value):
        raise ConfigError(field, "must be the app's bundle id (letters, digits, '-' and '.', such as "
                                 "com.example.bank)")
    return value


def validate(key_p8: Any, key_id: Any, team_id: Any, topic: Any, environment: Any) -> ApnsConfig:
    """An :class:`ApnsConfig` (without environment id), or :class:`ConfigError`."""
    check_key(key_p8)
    checked_key_id = _id(key_id, "keyId", "the Key ID shown with the key in the Apple Developer account")
    checked_team_id = _id(team_id, "teamId", "the Team ID of the Apple Developer account's Membership page")
    checked_topic = check_topic(topic)
    if environment is None:
        raise ConfigError("environment", "required")
    if environment not in ENVIRONMENTS:
        raise ConfigError("environment", 'must be "sandbox" (development builds) or "production" '
                                         "(TestFlight and App Store builds)")
    return ApnsConfig("", checked_key_id, checked_team_id, checked_topic, str(environment), str(key_p8))


def view(row: Any) -> dict[str, Any]:
    """What the API and CLI show of a configuration: never the key."""
    return {"environmentId": row["environment_id"], "keyId": row["key_id"], "teamId": row["team_id"],
            "topic": row["topic"], "environment": row["apns_environment"],
            "createdAt": _iso(row["created_at"]), "updatedAt": _iso(row["updated_at"])}


async def save(hub: Hub, env: str, key_p8: Any, key_id: Any, team_id: Any, topic: Any,
               environment: Any) -> dict[str, Any]:
    """Validate and store ``env``'s configuration (replacing any); returns :func:`view` of it."""
    checked = validate(key_p8, key_id, team_id, topic, environment)
    stamp = now()
    values = {"environment_id": env, "key_id": checked.key_id, "team_id": checked.team_id,
              "topic": checked.topic, "apns_environment": checked.environment,
              "key_p8": _sealer(hub).seal(checked.key_p8, env), "created_at": stamp, "updated_at": stamp}
    async with hub.db.begin() as conn:
        statement = upsert_statement(conn, config_table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[C.environment_id],
            set_={k: statement.excluded[k] for k in values if k not in ("environment_id", "created_at")})
        await conn.execute(statement)
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().one()
    return view(row)


async def get_view(hub: Hub, env: str) -> dict[str, Any] | None:
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().first()
    return view(row) if row is not None else None


async def remove(hub: Hub, env: str) -> bool:
    """Delete ``env``'s configuration; False when there was none."""
    async with hub.db.begin() as conn:
        result = await conn.execute(delete(config_table).where(C.environment_id == env))
    return bool(result.rowcount)


async def load(hub: Hub, env: str) -> ApnsConfig | None:
    """``env``'s configuration with the key unsealed, or None when it has none.

    Raises ``ValueError`` when the key cannot be unsealed (``HUB_SECRET_KEY`` changed).
    """
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(config_table).where(C.environment_id == env))).mappings().first()
    if row is None:
        return None
    return ApnsConfig(env, row["key_id"], row["team_id"], row["topic"], row["apns_environment"],
                      _sealer(hub).unseal(row["key_p8"], env))
