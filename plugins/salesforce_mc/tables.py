"""Tables of the salesforce_mc plugin: the activity settings, the journey bindings and the
Salesforce profile sync.

Their migrations are the Alembic branch ``salesforce_mc`` in ``migrations/``. The JWT signing
secret is sealed (:class:`hub.sealing.Sealer`, purpose ``hub sfmc jwt v1``, context the
environment id), as are the Salesforce password and security token (purpose ``hub sfmc
salesforce v1``). ``token`` is the capability in the activity's URL.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

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

# One row per environment that pulls Contact or Lead fields from Salesforce into its customers:
# the settings, the watermark (the last record fully written, by LastModifiedDate then Id) and
# the state of the latest run. ``next_run_at`` is when the sweep enqueues the next run;
# ``run_requested_at`` when someone asked for one (a run that started earlier queues another as
# it ends); ``lease_owner``/``lease_until`` keep two runs from overlapping; ``settings_version`` moves on
# every change that makes a run in flight stale.
profile_sync = Table(
    "hub_sfmc_profile_sync",
    metadata,
    Column("environment_id", String(64), ForeignKey(
        "hub_environment.id", ondelete="CASCADE", name="fk_hub_sfmc_profile_sync_env"), primary_key=True),
    Column("login_url", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("password", Text, nullable=False),  # sealed
    Column("security_token", Text, nullable=False),  # sealed; empty when none is needed
    Column("sobject", String(16), nullable=False),  # Contact | Lead
    Column("user_id_field", String(255), nullable=False),
    Column("field_map", Json, nullable=False),  # Salesforce field -> Hub customer field
    Column("enabled", Boolean, nullable=False),
    Column("interval_minutes", Integer, nullable=False),
    Column("settings_version", Integer, nullable=False),
    Column("watermark_at", String(40), nullable=True),  # LastModifiedDate as Salesforce wrote it
    Column("watermark_id", String(18), nullable=True),
    Column("next_run_at", UtcDateTime(), nullable=True),
    Column("run_requested_at", UtcDateTime(), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("run_started_at", UtcDateTime(), nullable=True),
    Column("run_finished_at", UtcDateTime(), nullable=True),
    Column("run_records", Integer, nullable=False),
    Column("run_skipped", Integer, nullable=False),
    Column("last_skip", Text, nullable=True),
    Column("last_success_at", UtcDateTime(), nullable=True),
    Column("last_error_code", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UtcDateTime(), nullable=True),
    Column("total_records", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_hub_sfmc_profile_sync_due", "enabled", "next_run_at"),
)
