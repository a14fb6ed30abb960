"""push_apns: APNs configuration per environment (hub_push_apns_config)

Revision ID: push_apns_0001
Revises:
Create Date: 2026-11-24 09:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'push_apns_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('push_apns',)
depends_on: str | Sequence[str] | None = '0002'


def upgrade() -> None:
    op.create_table('hub_push_apns_config',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=10), nullable=False),
    sa.Column('team_id', sa.String(length=10), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('apns_environment', sa.String(length=16), nullable=False),
    sa.Column('key_p8', sa.Text(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name='fk_hub_push_apns_config_env',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', name=op.f('pk_hub_push_apns_config')),
    )


def downgrade() -> None:
    op.drop_table('hub_push_apns_config')
