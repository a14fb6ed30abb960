"""workbench: staff members, groups, sessions and the audit log

Revision ID: workbench_0001
Revises:
Create Date: 2026-12-05 12:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db.types

revision: str = 'workbench_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('workbench',)
depends_on: str | Sequence[str] | None = '0002'

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')
_BIGID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('hub_staff',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('last_login_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_staff')),
    sa.UniqueConstraint('email', name=op.f('uq_hub_staff_email')),
    )
    op.create_table('hub_staff_group',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('permissions', _JSON, nullable=False),
    sa.Column('environments', _JSON, nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_hub_staff_group')),
    )
    op.create_table('hub_staff_member',
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('group_name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['hub_staff.id'], name='fk_hub_staff_member_staff',
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_name'], ['hub_staff_group.name'], name='fk_hub_staff_member_group',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('staff_id', 'group_name', name=op.f('pk_hub_staff_member')),
    )
    op.create_table('hub_staff_session',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('expires_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['hub_staff.id'], name='fk_hub_staff_session_staff',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_hub_staff_session')),
    )
    op.create_index('ix_hub_staff_session_staff', 'hub_staff_session', ['staff_id'], unique=False)
    op.create_table('hub_staff_audit',
    sa.Column('id', _BIGID, autoincrement=True, nullable=False),
    sa.Column('environment_id', sa.String(length=64), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('staff_email', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('detail', _JSON, nullable=False),
    sa.Column('at', hub.db.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_staff_audit')),
    )
    op.create_index('ix_hub_staff_audit_env_target', 'hub_staff_audit',
                    ['environment_id', 'target', 'id'], unique=False)
    op.create_index('ix_hub_staff_audit_env_id', 'hub_staff_audit', ['environment_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_hub_staff_audit_env_id', table_name='hub_staff_audit')
    op.drop_index('ix_hub_staff_audit_env_target', table_name='hub_staff_audit')
    op.drop_table('hub_staff_audit')
    op.drop_index('ix_hub_staff_session_staff', table_name='hub_staff_session')
    op.drop_table('hub_staff_session')
    op.drop_table('hub_staff_member')
    op.drop_table('hub_staff_group')
    op.drop_table('hub_staff')
