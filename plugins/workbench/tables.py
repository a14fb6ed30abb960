"""Tables of the workbench plugin: staff members, their groups, sessions and the audit log.

Their migrations are the Alembic branch ``workbench`` in ``migrations/``. Staff are not tied to
one environment: a group grants permissions in the environments it names (``*``: all of them),
and a member holds the union of their groups' permissions in each environment.

Session cookies hold a random token; the table keeps only its SHA-256, so a copy of the database
cannot be replayed as a session.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from hub.db.tables import metadata
from hub.db.types import BigId, Json, UtcDateTime

staff = Table(
    "hub_staff",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-case
    Column("name", String(200), nullable=False),
    Column("password_hash", Text, nullable=True),  # None: signs in only through OIDC
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime(), nullable=True),
)

group = Table(
    "hub_staff_group",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("description", String(500), nullable=False),
    Column("permissions", Json, nullable=False),  # ["workbench:edit", "customer_center:view", ...]
    Column("environments", Json, nullable=False),  # ["demo", ...] or ["*"]
    Column("created_at", UtcDateTime(), nullable=False),
)

member = Table(
    "hub_staff_member",
    metadata,
    Column("staff_id", Integer, ForeignKey("hub_staff.id", ondelete="CASCADE",
                                           name="fk_hub_staff_member_staff"), primary_key=True),
    Column("group_name", String(100), ForeignKey("hub_staff_group.name", ondelete="CASCADE",
                                                 name="fk_hub_staff_member_group"), primary_key=True),
)

session = Table(
    "hub_staff_session",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("staff_id", Integer, ForeignKey("hub_staff.id", ondelete="CASCADE",
                                           name="fk_hub_staff_session_staff"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("user_agent", String(300), nullable=False),
    Index("ix_hub_staff_session_staff", "staff_id"),
)

# Who did what to whom: every change a staff member makes through the UI (flows sent from the
# Customer Center, flows published, settings changed).
audit = Table(
    "hub_staff_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("environment_id", String(64), nullable=True),
    Column("staff_id", Integer, nullable=True),
    Column("staff_email", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False),  # e.g. a customer's user id, a flow config id
    Column("detail", Json, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_hub_staff_audit_env_target", "environment_id", "target", "id"),
    Index("ix_hub_staff_audit_env_id", "environment_id", "id"),
)
