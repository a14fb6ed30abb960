"""webhooks_out: subscriptions, pending deliveries, delivery log

Revision ID: webhooks_out_0001
Revises:
Create Date: 2026-11-23 22:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'webhooks_out_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('webhooks_out',)
depends_on: str | Sequence[str] | None = '0002'

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table('hub_webhooks_out_subscription',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('event_types', _JSON, nullable=False),
    sa.Column('flow_ids', _JSON, nullable=False),
    sa.Column('headers', _JSON, nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('previous_secret', sa.Text(), nullable=True),
    sa.Column('previous_secret_until', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('paused_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('last_success_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('last_failure_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'],
                            name='fk_hub_webhooks_out_subscription_env', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_webhooks_out_subscription'))
    )
    with op.batch_alter_table('hub_webhooks_out_subscription', schema=None) as batch_op:
        batch_op.create_index('ix_hub_webhooks_out_subscription_env',
                              ['environment_id', 'created_at', 'id'], unique=False)

    op.create_table('hub_webhooks_out_pending',
    sa.Column('seq', _BIG_ID, autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['hub_webhooks_out_subscription.id'],
                            name='fk_hub_webhooks_out_pending_sub', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_hub_webhooks_out_pending')),
    sa.UniqueConstraint('subscription_id', 'event_id', name='uq_hub_webhooks_out_pending_sub_event')
    )
    with op.batch_alter_table('hub_webhooks_out_pending', schema=None) as batch_op:
        batch_op.create_index('ix_hub_webhooks_out_pending_sub_seq', ['subscription_id', 'seq'], unique=False)

    op.create_table('hub_webhooks_out_delivery',
    sa.Column('id', _BIG_ID, autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('webhook_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('response_snippet', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['hub_webhooks_out_subscription.id'],
                            name='fk_hub_webhooks_out_delivery_sub', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_webhooks_out_delivery'))
    )
    with op.batch_alter_table('hub_webhooks_out_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_hub_webhooks_out_delivery_sub_id', ['subscription_id', 'id'], unique=False)
        batch_op.create_index('ix_hub_webhooks_out_delivery_created', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_table('hub_webhooks_out_delivery')
    op.drop_table('hub_webhooks_out_pending')
    op.drop_table('hub_webhooks_out_subscription')
