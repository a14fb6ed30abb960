"""list_upload: uploads, their valid rows and their rejected rows

Revision ID: list_upload_0001
Revises:
Create Date: 2026-11-23 23:05:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.db.types

revision: str = 'list_upload_0001'
down_revision: str | None = None
branch_labels: Sequence[str] | None = ('list_upload',)
depends_on: Sequence[str] | None = '0002'


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('hub_list_upload',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('flow_id', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('mapping', _json(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('rows_valid', sa.Integer(), nullable=False),
    sa.Column('rows_started', sa.Integer(), nullable=False),
    sa.Column('rows_rejected', sa.Integer(), nullable=False),
    sa.Column('started_through', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', hub.db.types.UtcDateTime(), nullable=False),
    sa.Column('queued_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('started_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.Column('completed_at', hub.db.types.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['hub_environment.id'], name=op.f('fk_hub_list_upload_environment_id_hub_environment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', 'id', name=op.f('pk_hub_list_upload'))
    )
    with op.batch_alter_table('hub_list_upload', schema=None) as batch_op:
        batch_op.create_index('ix_hub_list_upload_env_created', ['environment_id', 'created_at'], unique=False)
        batch_op.create_index('ix_hub_list_upload_env_flow_hash', ['environment_id', 'flow_id', 'content_hash'], unique=False)

    op.create_table('hub_list_upload_row',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('upload_id', sa.String(length=40), nullable=False),
    sa.Column('row_number', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('variables', _json(), nullable=False),
    sa.Column('metadata', _json(), nullable=False),
    sa.PrimaryKeyConstraint('environment_id', 'upload_id', 'row_number', name=op.f('pk_hub_list_upload_row'))
    )
    op.create_table('hub_list_upload_error',
    sa.Column('environment_id', sa.String(length=64), nullable=False),
    sa.Column('upload_id', sa.String(length=40), nullable=False),
    sa.Column('row_number', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('environment_id', 'upload_id', 'row_number', name=op.f('pk_hub_list_upload_error'))
    )


def downgrade() -> None:
    op.drop_table('hub_list_upload_error')
    op.drop_table('hub_list_upload_row')
    with op.batch_alter_table('hub_list_upload', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_list_upload_env_flow_hash')
        batch_op.drop_index('ix_hub_list_upload_env_created')

    op.drop_table('hub_list_upload')
