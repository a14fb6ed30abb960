"""push_fcm: FCM configuration per environment (hub_push_fcm_config)

Revision ID: push_fcm_0001
Revises:
Create Date: 2026-11-24 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'push_fcm_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('push_fcm',)
depends_on: str | Sequence[str] | None = '0002'

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table('hub_push_fcm_config',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=100), nullable=False),
    sa.Column('client_email', sa.String(length=320), nullable=False),
    sa.Column('private_key_id', sa.String(length=100), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('token_uri', sa.String(length=2048), nullable=False),
    sa.Column('platforms', _JSON, nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name='fk_hub_push_fcm_config_env',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', name=op.f('pk_hub_push_fcm_config')),
    )


def downgrade() -> None:
    op.drop_table('hub_push_fcm_config')
