"""push: notifications the core dispatcher sends, and each device's outcome

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 07:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table('hub_push_notification',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('card_id', sa.String(length=36), nullable=True),
    sa.Column('instance_id', sa.String(length=36), nullable=True),
    sa.Column('step_id', sa.String(length=100), nullable=True),
    sa.Column('scenario', sa.String(length=32), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('data', _JSON, nullable=False),
    sa.Column('platforms', _JSON, nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('ttl_seconds', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('rescheduled', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('deliveries', _JSON, nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('sent_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_push_notification'))
    )
    with op.batch_alter_table('hub_push_notification', schema=None) as batch_op:
        batch_op.create_index('ix_hub_push_notification_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_hub_push_notification_card', ['card_id'], unique=False)
        batch_op.create_index('ix_hub_push_notification_user', ['environment_id', 'user_id', 'created_at'],
                              unique=False)

    op.create_table('hub_push_delivery',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', hub.db.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_push_delivery'))
    )
    with op.batch_alter_table('hub_push_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_hub_push_delivery_env_at', ['environment_id', 'at'], unique=False)
        batch_op.create_index('ix_hub_push_delivery_user', ['environment_id', 'user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hub_push_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_push_delivery_user')
        batch_op.drop_index('ix_hub_push_delivery_env_at')
    op.drop_table('hub_push_delivery')
    with op.batch_alter_table('hub_push_notification', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_push_notification_user')
        batch_op.drop_index('ix_hub_push_notification_card')
        batch_op.drop_index('ix_hub_push_notification_due')
    op.drop_table('hub_push_notification')
