"""sdk_streams: end-user JWT keys and push devices

Revision ID: sdk_streams_0001
Revises:
Create Date: 2026-11-23 22:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'sdk_streams_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('sdk_streams',)
depends_on: str | Sequence[str] | None = '0002'


def upgrade() -> None:
    op.create_table('hub_sdk_streams_key',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('pem', sa.Text(), nullable=True),
    sa.Column('jwks_url', sa.String(length=2048), nullable=True),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('audience', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'],
                            name=op.f('fk_hub_sdk_streams_key_environment_id_hub_environment'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_sdk_streams_key'))
    )
    with op.batch_alter_table('hub_sdk_streams_key', schema=None) as batch_op:
        batch_op.create_index('ix_hub_sdk_streams_key_env', ['environment_id', 'created_at'], unique=False)

    op.create_table('hub_sdk_streams_device',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=1024), nullable=False),
    sa.Column('app_id', sa.String(length=255), nullable=True),
    sa.Column('apns_topic', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('invalidated_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_sdk_streams_device')),
    sa.UniqueConstraint('environment_id', 'platform', 'token', name='uq_hub_sdk_streams_device_token')
    )
    with op.batch_alter_table('hub_sdk_streams_device', schema=None) as batch_op:
        batch_op.create_index('ix_hub_sdk_streams_device_env_user', ['environment_id', 'user_id', 'platform'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hub_sdk_streams_device', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_sdk_streams_device_env_user')
    op.drop_table('hub_sdk_streams_device')
    with op.batch_alter_table('hub_sdk_streams_key', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_sdk_streams_key_env')
    op.drop_table('hub_sdk_streams_key')
