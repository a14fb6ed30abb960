"""Tables of the list_upload plugin.

``hub_list_upload`` is one upload and its progress; ``hub_list_upload_row`` holds its valid rows
(user id, converted variables, metadata) until and after they start; ``hub_list_upload_error``
the rejected rows with their reason, for ``errors.csv``. Row numbers count CSV records with the
header as row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import Json, UtcDateTime

upload = Table(
    "hub_list_upload",
    metadata,
    Column(
        "environment_id", String(64), ForeignKey("hub_environment.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("id", String(40), primary_key=True),
    Column("flow_id", String(64), nullable=False),
    Column("filename", String(255), nullable=True),
    Column("content_hash", String(64), nullable=True),  # SHA-256 of the CSV bytes, once received
    Column("mapping", Json, nullable=False),  # userColumn, variables {name: column}, metadataColumns
    Column("state", String(16), nullable=False),  # receiving | queued | running | completed | failed
    Column("rows_read", Integer, nullable=False),
    Column("rows_valid", Integer, nullable=False),
    Column("rows_started", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("started_through", BigInteger, nullable=False),  # last row number the workers started
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("queued_at", UtcDateTime(), nullable=True),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("completed_at", UtcDateTime(), nullable=True),
    Index("ix_hub_list_upload_env_flow_hash", "environment_id", "flow_id", "content_hash"),
    Index("ix_hub_list_upload_env_created", "environment_id", "created_at"),
)

row = Table(
    "hub_list_upload_row",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("upload_id", String(40), primary_key=True),
    Column("row_number", BigInteger, primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("variables", Json, nullable=False),
    Column("metadata", Json, nullable=False),
)

error = Table(
    "hub_list_upload_error",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("upload_id", String(40), primary_key=True),
    Column("row_number", BigInteger, primary_key=True),
    Column("reason", Text, nullable=False),
)
