"""salesforce_mc: activity settings and journey bindings (hub_sfmc_config, hub_sfmc_binding)

Revision ID: salesforce_mc_0001
Revises:
Create Date: 2026-12-05 07:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'salesforce_mc_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('salesforce_mc',)
depends_on: str | Sequence[str] | None = '0002'

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table('hub_sfmc_config',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('jwt_secret', sa.Text(), nullable=False),
    sa.Column('timeout_ms', sa.Integer(), nullable=False),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('retry_delay_ms', sa.Integer(), nullable=False),
    sa.Column('concurrent_requests', sa.Integer(), nullable=False),
    sa.Column('user_id_from', sa.String(length=100), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('token_rotated_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name='fk_hub_sfmc_config_env',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', name=op.f('pk_hub_sfmc_config')),
    sa.UniqueConstraint('token', name=op.f('uq_hub_sfmc_config_token')),
    )
    op.create_table('hub_sfmc_binding',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('activity_object_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=True),
    sa.Column('arguments', _JSON, nullable=False),
    sa.Column('interaction_id', sa.String(length=100), nullable=True),
    sa.Column('interaction_key', sa.String(length=200), nullable=True),
    sa.Column('interaction_version', sa.String(length=20), nullable=True),
    sa.Column('original_definition_id', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('published_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('stopped_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name='fk_hub_sfmc_binding_env',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', 'activity_object_id', name=op.f('pk_hub_sfmc_binding')),
    )
    op.create_index('ix_hub_sfmc_binding_env_interaction', 'hub_sfmc_binding',
                    ['environment_id', 'interaction_id', 'interaction_version'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_hub_sfmc_binding_env_interaction', table_name='hub_sfmc_binding')
    op.drop_table('hub_sfmc_binding')
    op.drop_table('hub_sfmc_config')
