"""Tables of the sdk_streams plugin: end-user JWT keys per environment, and push devices.

Their migrations are the Alembic branch ``sdk_streams`` in ``migrations/``. Devices carry
``environment_id`` and ``user_id``, so erasing a customer erases their devices too.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from hub.db.tables import metadata
from hub.db.types import UtcDateTime

sdk_key = Table(
    "hub_sdk_streams_key",
    metadata,
    Column("id", String(36), primary_key=True),  # keyId
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # pem | jwks
    Column("pem", Text, nullable=True),  # the public key, for kind pem
    Column("jwks_url", String(2048), nullable=True),  # for kind jwks
    Column("issuer", String(255), nullable=False),
    Column("audience", String(255), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_hub_sdk_streams_key_env", "environment_id", "created_at"),
)

device = Table(
    "hub_sdk_streams_device",
    metadata,
    Column("id", String(36), primary_key=True),  # deviceId
    Column("environment_id", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("platform", String(16), nullable=False),  # ios | android | web
    Column("token", String(1024), nullable=False),
    Column("app_id", String(255), nullable=True),
    Column("apns_topic", String(255), nullable=True),
    Column("state", String(16), nullable=False),  # valid | invalid
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("invalidated_at", UtcDateTime(), nullable=True),
    UniqueConstraint("environment_id", "platform", "token", name="uq_hub_sdk_streams_device_token"),
    Index("ix_hub_sdk_streams_device_env_user", "environment_id", "user_id", "platform"),
)
