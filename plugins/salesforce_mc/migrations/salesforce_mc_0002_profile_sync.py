"""salesforce_mc: Salesforce profile sync settings, watermark and run state (hub_sfmc_profile_sync)

Revision ID: salesforce_mc_0002
Revises: salesforce_mc_0001
Create Date: 2026-12-09 09:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'salesforce_mc_0002'
down_revision: str | None = 'salesforce_mc_0001'
branch_labels: Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table('hub_sfmc_profile_sync',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('login_url', sa.String(length=255), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('password', sa.Text(), nullable=False),
    sa.Column('security_token', sa.Text(), nullable=False),
    sa.Column('sobject', sa.String(length=16), nullable=False),
    sa.Column('user_id_field', sa.String(length=255), nullable=False),
    sa.Column('field_map', _JSON, nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('interval_minutes', sa.Integer(), nullable=False),
    sa.Column('settings_version', sa.Integer(), nullable=False),
    sa.Column('watermark_at', sa.String(length=40), nullable=True),
    sa.Column('watermark_id', sa.String(length=18), nullable=True),
    sa.Column('next_run_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('run_requested_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('run_started_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('run_finished_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('run_records', sa.Integer(), nullable=False),
    sa.Column('run_skipped', sa.Integer(), nullable=False),
    sa.Column('last_skip', sa.Text(), nullable=True),
    sa.Column('last_success_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('last_error_code', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('total_records', sa.Integer(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name='fk_hub_sfmc_profile_sync_env',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', name=op.f('pk_hub_sfmc_profile_sync')),
    )
    op.create_index('ix_hub_sfmc_profile_sync_due', 'hub_sfmc_profile_sync', ['enabled', 'next_run_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_hub_sfmc_profile_sync_due', table_name='hub_sfmc_profile_sync')
    op.drop_table('hub_sfmc_profile_sync')
