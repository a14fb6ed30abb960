"""Tables of the marketo plugin; its migrations are the Alembic branch ``marketo`` in ``migrations/``.

``hub_marketo_config`` is an environment's Marketo integration: the API key Marketo sends in
``x-api-key`` (sealed: :class:`hub.sealing.Sealer`, purpose ``hub marketo v1``, context the
environment id), how a lead becomes a user id, the lead fields written back and the flows offered.

``hub_marketo_batch`` is one ``submitAsyncAction`` call: its leads as planned starts, the
per-lead results as workers record them (``started_through`` leads so far, committed with their
invocations), and its callback: the body (built once, so every attempt sends the same), the
status, the attempts and the last error. Marketo's one-time callback token and callback API key
are sealed (context ``{environment}:{batch id}``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import Json, UtcDateTime

config = Table(
    "hub_marketo_config",
    metadata,
    Column(
        "environment_id",
        String(64),
        ForeignKey("hub_environment.id", ondelete="CASCADE", name="fk_hub_marketo_config_env"),
        primary_key=True,
    ),
    Column("api_key", Text, nullable=False),  # sealed
    Column("user_id_from", String(16), nullable=False),  # leadId | email
    Column("write_back", Json, nullable=False),  # names of the lead fields written back
    Column("flows", Json, nullable=True),  # flowConfigIds offered; null: every startable flow
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("api_key_updated_at", UtcDateTime(), nullable=False),
)

batch = Table(
    "hub_marketo_batch",
    metadata,
    Column(
        "environment_id",
        String(64),
        ForeignKey("hub_environment.id", ondelete="CASCADE", name="fk_hub_marketo_batch_env"),
        primary_key=True,
    ),
    Column("id", String(40), primary_key=True),  # from Marketo's token and batchid
    Column("marketo_batch_id", String(200), nullable=True),
    Column("campaign_id", BigInteger, nullable=False),
    Column("munchkin_id", String(100), nullable=False),
    Column("callback_url", Text, nullable=False),
    Column("token", Text, nullable=False),  # sealed
    Column("api_callback_key", Text, nullable=False),  # sealed
    Column("leads", Json, nullable=False),  # planned starts, one per lead
    Column("lead_count", Integer, nullable=False),
    Column("results", Json, nullable=False),  # one per lead started so far
    Column("started_through", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # queued | starting | calling_back | completed | failed
    Column("error", Text, nullable=True),  # a batch-level error sent in the callback
    Column("callback_body", Json, nullable=True),
    Column("callback_status", String(16), nullable=False),  # pending | sent | failed
    Column("callback_attempts", Integer, nullable=False),
    Column("callback_last_code", Integer, nullable=True),
    Column("callback_last_error", Text, nullable=True),
    Column("callback_next_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Index("ix_hub_marketo_batch_env_created", "environment_id", "created_at"),
    Index("ix_hub_marketo_batch_state", "state", "updated_at"),
)
