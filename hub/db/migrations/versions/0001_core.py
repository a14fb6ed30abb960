"""core tables: environments, api clients, customers, fields, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:19:37.942136
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.db.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('hub_environment',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_environment'))
    )
    op.create_table('hub_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=255), nullable=False),
    sa.Column('job_name', sa.String(length=200), nullable=False),
    sa.Column('args', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('defer_until', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_outbox')),
    sa.UniqueConstraint('job_id', name=op.f('uq_hub_outbox_job_id'))
    )
    with op.batch_alter_table('hub_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hub_outbox_created_at'), ['created_at'], unique=False)

    op.create_table('hub_api_client',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('roles', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('revoked_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_api_client_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_hub_api_client'))
    )
    with op.batch_alter_table('hub_api_client', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hub_api_client_environment_id'), ['environment_id'], unique=False)

    op.create_table('hub_customer',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('preferences', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('is_test_user', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('first_seen_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('last_seen_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_customer_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_customer')),
    sa.UniqueConstraint('environment_id', 'user_id', name='uq_hub_customer_env_user')
    )
    with op.batch_alter_table('hub_customer', schema=None) as batch_op:
        batch_op.create_index('ix_hub_customer_env_test', ['environment_id', 'is_test_user', 'id'], unique=False)

    op.create_table('hub_field_definition',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_field_definition_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', 'name', name=op.f('pk_hub_field_definition'))
    )
    op.create_table('hub_customer_tag',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['hub_customer.id'], name=op.f('fk_hub_customer_tag_customer_id_hub_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'tag', name=op.f('pk_hub_customer_tag'))
    )
    with op.batch_alter_table('hub_customer_tag', schema=None) as batch_op:
        batch_op.create_index('ix_hub_customer_tag_env_tag', ['environment_id', 'tag', 'customer_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('hub_customer_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_customer_tag_env_tag')

    op.drop_table('hub_customer_tag')
    op.drop_table('hub_field_definition')
    with op.batch_alter_table('hub_customer', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_customer_env_test')

    op.drop_table('hub_customer')
    with op.batch_alter_table('hub_api_client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hub_api_client_environment_id'))

    op.drop_table('hub_api_client')
    with op.batch_alter_table('hub_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hub_outbox_created_at'))

    op.drop_table('hub_outbox')
    op.drop_table('hub_environment')
    
