"""The core tables. Every row carries ``environment_id``: environments are tenants.

SQLAlchemy Core tables (no ORM): services read and write them with explicit statements, which
keeps hot paths cheap and makes every query visible. Alembic migrations in
``hub/db/migrations`` must agree with this module (``tests/db/test_migrations.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from hub.db.types import BigId, Json, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

environment = Table(
    "hub_environment",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

api_client = Table(
    "hub_api_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("roles", Json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

field_definition = Table(
    "hub_field_definition",
    metadata,
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

customer = Table(
    "hub_customer",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("fields", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Column("preferences", Json, nullable=False),
    Column("is_test_user", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("first_seen_at", UtcDateTime(), nullable=True),
    Column("last_seen_at", UtcDateTime(), nullable=True),
    UniqueConstraint("environment_id", "user_id", name="uq_hub_customer_env_user"),
    Index("ix_hub_customer_env_test", "environment_id", "is_test_user", "id"),
)

customer_tag = Table(
    "hub_customer_tag",
    metadata,
    Column("customer_id", BigId, ForeignKey("hub_customer.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(100), primary_key=True),
    Column("environment_id", String(64), nullable=False),
    Index("ix_hub_customer_tag_env_tag", "environment_id", "tag", "customer_id"),
)

outbox = Table(
    "hub_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", String(255), nullable=False, unique=True),
    Column("job_name", String(200), nullable=False),
    Column("args", Json, nullable=False),
    Column("defer_until", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
)
