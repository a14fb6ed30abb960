"""webhooks_in: inbound trigger endpoints (hub_webhooks_trigger)

Revision ID: webhooks_in_0001
Revises:
Create Date: 2026-11-23 22:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.db.types

revision: str = 'webhooks_in_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('webhooks_in',)
depends_on: Sequence[str] | None = '0002'


def upgrade() -> None:
    op.create_table('hub_webhooks_trigger',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('signed', sa.Boolean(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('previous_secret', sa.Text(), nullable=True),
    sa.Column('previous_secret_expires_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('mapping', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('token_rotated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('secret_rotated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_webhooks_trigger_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_webhooks_trigger')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_hub_webhooks_trigger_token_hash'))
    )
    with op.batch_alter_table('hub_webhooks_trigger', schema=None) as batch_op:
        batch_op.create_index('ix_hub_webhooks_trigger_env_id', ['environment_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hub_webhooks_trigger', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_webhooks_trigger_env_id')

    op.drop_table('hub_webhooks_trigger')
