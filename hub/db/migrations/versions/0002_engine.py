"""engine: flows, invocations, instances, cards, analytics events, timers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:41:16.833427
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.db.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('hub_analytics_event',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('timestamp', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=True),
    sa.Column('invocation_id', sa.String(length=100), nullable=True),
    sa.Column('instance_id', sa.String(length=36), nullable=True),
    sa.Column('card_id', sa.String(length=36), nullable=True),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_analytics_event'))
    )
    with op.batch_alter_table('hub_analytics_event', schema=None) as batch_op:
        batch_op.create_index('ix_hub_analytics_event_env_flow_time', ['environment_id', 'flow_id', 'timestamp'], unique=False)
        batch_op.create_index('ix_hub_analytics_event_env_name_time', ['environment_id', 'name', 'timestamp'], unique=False)
        batch_op.create_index('ix_hub_analytics_event_env_time', ['environment_id', 'timestamp', 'id'], unique=False)
        batch_op.create_index('ix_hub_analytics_event_env_user_time', ['environment_id', 'user_id', 'timestamp'], unique=False)

    op.create_table('hub_card',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('lifecycle_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=True),
    sa.Column('invocation_id', sa.String(length=100), nullable=True),
    sa.Column('flow_id', sa.String(length=64), nullable=True),
    sa.Column('flow_version', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.String(length=64), nullable=True),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('template_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('streams', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('platforms', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('values', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.Column('embargo_until', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('expires_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('snoozed_until', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('published_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('closed_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_card'))
    )
    with op.batch_alter_table('hub_card', schema=None) as batch_op:
        batch_op.create_index('ix_hub_card_env_lifecycle', ['environment_id', 'lifecycle_id'], unique=False)
        batch_op.create_index('ix_hub_card_env_user_status', ['environment_id', 'user_id', 'status'], unique=False)
        batch_op.create_index('ix_hub_card_instance', ['instance_id'], unique=False)

    op.create_table('hub_invocation_chunk',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('invocation_id', sa.String(length=100), nullable=False),
    sa.Column('hi', sa.BigInteger(), nullable=False),
    sa.Column('lo', sa.BigInteger(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('done_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('environment_id', 'invocation_id', 'hi', name=op.f('pk_hub_invocation_chunk'))
    )
    op.create_table('hub_flow_instance',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('invocation_id', sa.String(length=100), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=False),
    sa.Column('flow_version', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('variables', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('position', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('ended_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_flow_instance')),
    sa.UniqueConstraint('environment_id', 'invocation_id', 'user_id', name='uq_hub_flow_instance_invocation_user')
    )
    with op.batch_alter_table('hub_flow_instance', schema=None) as batch_op:
        batch_op.create_index('ix_hub_flow_instance_env_user', ['environment_id', 'user_id'], unique=False)

    op.create_table('hub_flow_version',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('published_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('environment_id', 'flow_id', 'version', name=op.f('pk_hub_flow_version'))
    )
    op.create_table('hub_invocation',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=False),
    sa.Column('flow_version', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.Column('target', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('targeted', sa.Integer(), nullable=False),
    sa.Column('started', sa.Integer(), nullable=False),
    sa.Column('fanout_cursor', sa.BigInteger(), nullable=True),
    sa.Column('chunks_total', sa.Integer(), nullable=True),
    sa.Column('chunks_done', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('completed_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('environment_id', 'id', name=op.f('pk_hub_invocation'))
    )
    with op.batch_alter_table('hub_invocation', schema=None) as batch_op:
        batch_op.create_index('ix_hub_invocation_env_flow', ['environment_id', 'flow_id', 'created_at'], unique=False)

    op.create_table('hub_timer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('ref_id', sa.String(length=64), nullable=False),
    sa.Column('due_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('fired_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_timer')),
    sa.UniqueConstraint('kind', 'ref_id', 'due_at', name='uq_hub_timer_kind_ref_due')
    )
    with op.batch_alter_table('hub_timer', schema=None) as batch_op:
        batch_op.create_index('ix_hub_timer_pending', ['fired_at', 'due_at'], unique=False)

    op.create_table('hub_card_transition',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('card_id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['hub_card.id'], name=op.f('fk_hub_card_transition_card_id_hub_card'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_card_transition'))
    )
    with op.batch_alter_table('hub_card_transition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hub_card_transition_card_id'), ['card_id'], unique=False)

    op.create_table('hub_flow',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('published_version', sa.Integer(), nullable=True),
    sa.Column('draft_version', sa.Integer(), nullable=True),
    sa.Column('customer_center_enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('archived_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_flow_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', 'id', name=op.f('pk_hub_flow'))
    )
    op.create_table('hub_stream_container',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_stream_container_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', 'id', name=op.f('pk_hub_stream_container'))
    )
    

    # Every environment has the stream container `default` (PROTOCOLS.md §3).
    op.execute(
        "INSERT INTO hub_stream_container (environment_id, id, name, created_at) "
        "SELECT id, 'default', 'Default', created_at FROM hub_environment"
    )


def downgrade() -> None:
    
    op.drop_table('hub_stream_container')
    op.drop_table('hub_flow')
    with op.batch_alter_table('hub_card_transition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hub_card_transition_card_id'))

    op.drop_table('hub_card_transition')
    with op.batch_alter_table('hub_timer', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_timer_pending')

    op.drop_table('hub_timer')
    with op.batch_alter_table('hub_invocation', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_invocation_env_flow')

    op.drop_table('hub_invocation')
    op.drop_table('hub_flow_version')
    with op.batch_alter_table('hub_flow_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_flow_instance_env_user')

    op.drop_table('hub_flow_instance')
    op.drop_table('hub_invocation_chunk')
    with op.batch_alter_table('hub_card', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_card_instance')
        batch_op.drop_index('ix_hub_card_env_user_status')
        batch_op.drop_index('ix_hub_card_env_lifecycle')

    op.drop_table('hub_card')
    with op.batch_alter_table('hub_analytics_event', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_analytics_event_env_user_time')
        batch_op.drop_index('ix_hub_analytics_event_env_time')
        batch_op.drop_index('ix_hub_analytics_event_env_name_time')
        batch_op.drop_index('ix_hub_analytics_event_env_flow_time')

    op.drop_table('hub_analytics_event')
    
