"""The push_fcm plugin's table: one FCM configuration per environment.

Its migrations are the Alembic branch ``push_fcm`` in ``migrations/``. The service account's
private key is sealed (:class:`hub.sealing.Sealer`, purpose ``hub push fcm v1``, context the
environment id, which is the row's key).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import Json, UtcDateTime

config = Table(
    "hub_push_fcm_config",
    metadata,
    Column("environment_id", String(64), ForeignKey(
        "hub_environment.id", ondelete="CASCADE", name="fk_hub_push_fcm_config_env"), primary_key=True),
    Column("project_id", String(100), nullable=False),
    Column("client_email", String(320), nullable=False),
    Column("private_key_id", String(100), nullable=False),
    Column("private_key", Text, nullable=False),  # sealed PEM
    Column("token_uri", String(2048), nullable=False),
    Column("platforms", Json, nullable=False),  # ["android", "web", "ios"?]
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
