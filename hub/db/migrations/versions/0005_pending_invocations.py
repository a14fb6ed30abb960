"""pending invocations: a partial index on the invocations still waiting for their job

A worker running one-customer starts takes the environment's other waiting invocations along
(oldest first), and the sweeper looks for pending ones left behind. Without this index both read
every invocation the table keeps; with it, only the backlog.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index('ix_hub_invocation_pending', 'hub_invocation', ['environment_id', 'created_at'],
                    unique=False, postgresql_where=PENDING, sqlite_where=PENDING, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_hub_invocation_pending', table_name='hub_invocation', if_exists=True)
