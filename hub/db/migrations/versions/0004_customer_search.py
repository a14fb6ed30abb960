"""customer search: indexes for the Customer Center's search (PostgreSQL only)

User id prefixes in byte order, name and email lower-cased (exact or prefix), and any profile
field by exact value through a GIN index on ``fields`` (``jsonb_path_ops``, for ``@>``). SQLite
(the development default) gets none of them: its search scans, which is fine at its sizes.

Building them blocks writes to ``hub_customer`` meanwhile (about 30 s per million customers on
two cores). A large deployment can build them first without blocking, with ``CREATE INDEX
CONCURRENTLY`` and the same names and definitions; this migration then keeps them
(``IF NOT EXISTS``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 12:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

INDEXES = (
    ('ix_hub_customer_user_id_c', 'btree', ['environment_id', 'user_id COLLATE "C"']),
    ('ix_hub_customer_email_lower', 'btree', ['environment_id', "lower(fields ->> 'email') COLLATE \"C\""]),
    ('ix_hub_customer_name_lower', 'btree', ['environment_id', "lower(fields ->> 'name') COLLATE \"C\""]),
    ('ix_hub_customer_fields_path', 'gin', ['fields jsonb_path_ops']),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for name, using, columns in INDEXES:
        op.create_index(name, 'hub_customer', [sa.text(c) for c in columns], unique=False,
                        postgresql_using=using, if_not_exists=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for name, _, _ in INDEXES:
        op.drop_index(name, table_name='hub_customer', if_exists=True)
