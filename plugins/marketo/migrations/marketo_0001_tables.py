"""marketo: integration settings and submitted batches (hub_marketo_config, hub_marketo_batch)

Revision ID: marketo_0001
Revises:
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.db.types

revision: str = "marketo_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("marketo",)
depends_on: str | Sequence[str] | None = "0002"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "hub_marketo_config",
        sa.Column("environment_id", sa.String(length=64), nullable=False),
        sa.Column("api_key", sa.Text(), nullable=False),
        sa.Column("user_id_from", sa.String(length=16), nullable=False),
        sa.Column("write_back", _json(), nullable=False),
        sa.Column("flows", _json(), nullable=True),
        sa.Column("created_at", hub.db.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", hub.db.types.UtcDateTime(), nullable=False),
        sa.Column("api_key_updated_at", hub.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["hub_environment.id"], name="fk_hub_marketo_config_env", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("environment_id", name=op.f("pk_hub_marketo_config")),
    )
    op.create_table(
        "hub_marketo_batch",
        sa.Column("environment_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("marketo_batch_id", sa.String(length=200), nullable=True),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("munchkin_id", sa.String(length=100), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("api_callback_key", sa.Text(), nullable=False),
        sa.Column("leads", _json(), nullable=False),
        sa.Column("lead_count", sa.Integer(), nullable=False),
        sa.Column("results", _json(), nullable=False),
        sa.Column("started_through", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("callback_body", _json(), nullable=True),
        sa.Column("callback_status", sa.String(length=16), nullable=False),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_last_code", sa.Integer(), nullable=True),
        sa.Column("callback_last_error", sa.Text(), nullable=True),
        sa.Column("callback_next_at", hub.db.types.UtcDateTime(), nullable=True),
        sa.Column("created_at", hub.db.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", hub.db.types.UtcDateTime(), nullable=False),
        sa.Column("completed_at", hub.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["hub_environment.id"], name="fk_hub_marketo_batch_env", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("environment_id", "id", name=op.f("pk_hub_marketo_batch")),
    )
    with op.batch_alter_table("hub_marketo_batch", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hub_marketo_batch_env_created", ["environment_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_hub_marketo_batch_state", ["state", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hub_marketo_batch", schema=None) as batch_op:
        batch_op.drop_index("ix_hub_marketo_batch_state")
        batch_op.drop_index("ix_hub_marketo_batch_env_created")
    op.drop_table("hub_marketo_batch")
    op.drop_table("hub_marketo_config")
