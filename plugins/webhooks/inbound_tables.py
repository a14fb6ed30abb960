"""Tables of the inbound webhooks: one row per trigger endpoint (``hub_webhooks_trigger``).

The trigger URL's token is never stored, only its SHA-256 (``token_hash``, the hot path's lookup
key). The signing secret is needed to check signatures, so it is stored sealed (AES-GCM under a
key derived from ``HUB_SECRET_KEY``, see ``inbound_signing``), as is the previous secret while a
rotation's grace period runs.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import Json, UtcDateTime

trigger = Table(
    "hub_webhooks_trigger",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), nullable=False),
    Column("flow_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("signed", Boolean, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", UtcDateTime(), nullable=True),
    Column("mapping", Json, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("token_rotated_at", UtcDateTime(), nullable=False),
    Column("secret_rotated_at", UtcDateTime(), nullable=False),
    Index("ix_hub_webhooks_trigger_env_id", "environment_id", "id"),
)
