"""Tables of the salesforce_mc plugin: the activity settings and the journey bindings.

Their migrations are the Alembic branch ``salesforce_mc`` in ``migrations/``. The JWT signing
secret is sealed (:class:`hub.sealing.Sealer`, purpose ``hub sfmc jwt v1``, context the
environment id). ``token`` is the capability in the activity's URL.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import Json, UtcDateTime

config = Table(
    "hub_sfmc_config",
    metadata,
    Column("environment_id", String(64), ForeignKey(
        "hub_environment.id", ondelete="CASCADE", name="fk_hub_sfmc_config_env"), primary_key=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("jwt_secret", Text, nullable=False),  # sealed
    Column("timeout_ms", Integer, nullable=False),
    Column("retry_count", Integer, nullable=False),
    Column("retry_delay_ms", Integer, nullable=False),
    Column("concurrent_requests", Integer, nullable=False),
    Column("user_id_from", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("token_rotated_at", UtcDateTime(), nullable=True),
)

# One row per activity on a journey version (Journey Builder's activityObjectID): the arguments
# the configuration UI stored, and the journey it is bound to once published.
binding = Table(
    "hub_sfmc_binding",
    metadata,
    Column("environment_id", String(64), ForeignKey(
        "hub_environment.id", ondelete="CASCADE", name="fk_hub_sfmc_binding_env"), primary_key=True),
    Column("activity_object_id", String(100), primary_key=True),
    Column("kind", String(16), nullable=False),  # activity | split
    Column("flow_id", String(64), nullable=True),
    Column("arguments", Json, nullable=False),  # merged inArguments, as configured
    Column("interaction_id", String(100), nullable=True),
    Column("interaction_key", String(200), nullable=True),
    Column("interaction_version", String(20), nullable=True),
    Column("original_definition_id", String(100), nullable=True),
    Column("state", String(16), nullable=False),  # saved | validated | published | stopped
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True),
    Column("stopped_at", UtcDateTime(), nullable=True),
    Index("ix_hub_sfmc_binding_env_interaction", "environment_id", "interaction_id", "interaction_version"),
)
