"""The push_apns plugin's table: one APNs configuration (auth key) per environment.

Its migrations are the Alembic branch ``push_apns`` in ``migrations/``. The ``.p8`` key is sealed
(:class:`hub.sealing.Sealer`, purpose ``hub push apns v1``, context the environment id, which is
the row's key).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import UtcDateTime

config = Table(
    "hub_push_apns_config",
    metadata,
    Column("environment_id", String(64), ForeignKey(
        "hub_environment.id", ondelete="CASCADE", name="fk_hub_push_apns_config_env"), primary_key=True),
    Column("key_id", String(10), nullable=False),
    Column("team_id", String(10), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("apns_environment", String(16), nullable=False),  # "sandbox" | "production"
    Column("key_p8", Text, nullable=False),  # sealed PEM
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
