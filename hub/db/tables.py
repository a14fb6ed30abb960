"""The core tables. Every row carries ``environment_id``: environments are tenants.

SQLAlchemy Core tables (no ORM): services read and write them with explicit statements, which
keeps hot paths cheap and makes every query visible. Alembic migrations in
``hub/db/migrations`` must agree with this module (``tests/db/test_migrations.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
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
    # The Customer Center's search, on PostgreSQL (migration 0004 skips them on SQLite): user id
    # prefixes in byte order, name and email lower-cased (exact or prefix) in byte order, and any
    # profile field by exact value (``fields @> '{"phone": "+44..."}'``). Written as expressions
    # with the collation or operator class in ``postgresql_ops`` (rendered after the expression:
    # ``user_id COLLATE "C"``), so they match the search's SQL (hub_plugins.workbench.search)
    # and Alembic can compare them.
    Index("ix_hub_customer_user_id_c", "environment_id", literal_column("user_id").label("uid"),
          postgresql_ops={"uid": 'COLLATE "C"'}).ddl_if(dialect="postgresql"),
    Index("ix_hub_customer_email_lower", "environment_id",
          func.lower(literal_column("fields ->> 'email'")).label("email"),
          postgresql_ops={"email": 'COLLATE "C"'}).ddl_if(dialect="postgresql"),
    Index("ix_hub_customer_name_lower", "environment_id",
          func.lower(literal_column("fields ->> 'name'")).label("name"),
          postgresql_ops={"name": 'COLLATE "C"'}).ddl_if(dialect="postgresql"),
    Index("ix_hub_customer_fields_path", literal_column("fields").label("doc"),
          postgresql_ops={"doc": "jsonb_path_ops"}, postgresql_using="gin").ddl_if(dialect="postgresql"),
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

# --- flows, invocations, instances, cards, analytics, timers (the engine) --------------------

stream_container = Table(
    "hub_stream_container",
    metadata,
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

flow = Table(
    "hub_flow",
    metadata,
    Column("environment_id", String(64),
           ForeignKey("hub_environment.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("published_version", Integer, nullable=True),
    Column("draft_version", Integer, nullable=True),
    Column("customer_center_enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("archived_at", UtcDateTime(), nullable=True),
)

flow_version = Table(
    "hub_flow_version",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("flow_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(16), nullable=False),  # draft | published | archived
    Column("definition", Json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True),
)

invocation = Table(
    "hub_invocation",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("id", String(100), primary_key=True),  # flowInvocationId
    Column("flow_id", String(64), nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("source", String(32), nullable=False),  # api | test | webhook | sfmc | marketo | ...
    Column("test", Boolean, nullable=False),
    Column("target", Json, nullable=False),
    Column("payload", Json, nullable=False),  # variables, metadata, notificationDetail, cardOptions
    Column("status", String(16), nullable=False),  # pending | running | completed | failed | cancelled
    Column("targeted", Integer, nullable=False),
    Column("started", Integer, nullable=False),
    Column("fanout_cursor", BigInteger, nullable=True),  # last hub_customer.id planned into a chunk
    Column("chunks_total", Integer, nullable=True),  # known once planning has finished
    Column("chunks_done", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Index("ix_hub_invocation_env_flow", "environment_id", "flow_id", "created_at"),
    # Invocations waiting for their job: what a worker running one-customer starts takes along
    # (``fanout._run_with_waiting``) and what the sweeper re-enqueues. Partial: it stays as small
    # as the backlog however many invocations the table keeps.
    Index("ix_hub_invocation_pending", "environment_id", "created_at",
          postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
)

invocation_chunk = Table(
    "hub_invocation_chunk",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("invocation_id", String(100), primary_key=True),
    Column("hi", BigInteger, primary_key=True),  # customers lo < id <= hi
    Column("lo", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("done_at", UtcDateTime(), nullable=True),
)

flow_instance = Table(
    "hub_flow_instance",
    metadata,
    Column("id", String(36), primary_key=True),  # flowInstanceId
    Column("environment_id", String(64), nullable=False),
    Column("invocation_id", String(100), nullable=False),
    Column("flow_id", String(64), nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # active | completed | failed | cancelled
    Column("variables", Json, nullable=False),  # resolved once at start
    Column("context", Json, nullable=False),  # step outputs: {"steps": {id: {...}}}
    Column("position", Json, nullable=False),  # step ids being run or waited on
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    UniqueConstraint("environment_id", "invocation_id", "user_id",
                     name="uq_hub_flow_instance_invocation_user"),
    Index("ix_hub_flow_instance_env_user", "environment_id", "user_id"),
)

card = Table(
    "hub_card",
    metadata,
    Column("id", String(36), primary_key=True),  # cardInstanceId
    Column("environment_id", String(64), nullable=False),
    Column("lifecycle_id", String(36), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("instance_id", String(36), nullable=True),
    Column("invocation_id", String(100), nullable=True),
    Column("flow_id", String(64), nullable=True),
    Column("flow_version", Integer, nullable=True),
    Column("step_id", String(64), nullable=True),
    Column("template_id", String(64), nullable=False),
    Column("template_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("streams", Json, nullable=False),
    Column("platforms", Json, nullable=False),
    Column("content", Json, nullable=False),  # rendered elements
    Column("values", Json, nullable=True),  # submitted input values
    Column("test", Boolean, nullable=False),
    Column("embargo_until", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("snoozed_until", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True),
    Column("closed_at", UtcDateTime(), nullable=True),
    Index("ix_hub_card_env_user_status", "environment_id", "user_id", "status"),
    Index("ix_hub_card_instance", "instance_id"),
    Index("ix_hub_card_env_lifecycle", "environment_id", "lifecycle_id"),
)

card_transition = Table(
    "hub_card_transition",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("card_id", String(36), ForeignKey("hub_card.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("environment_id", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("event", String(64), nullable=True),
    Column("source", String(16), nullable=False),  # internal | user | customer
    Column("detail", Json, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)

analytics_event = Table(
    "hub_analytics_event",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("environment_id", String(64), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("name", String(64), nullable=False),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("flow_id", String(64), nullable=True),
    Column("invocation_id", String(100), nullable=True),
    Column("instance_id", String(36), nullable=True),
    Column("card_id", String(36), nullable=True),
    Column("body", Json, nullable=False),  # the event as PROTOCOLS.md §2 shapes it
    Index("ix_hub_analytics_event_env_time", "environment_id", "timestamp", "id"),
    Index("ix_hub_analytics_event_env_user_time", "environment_id", "user_id", "timestamp"),
    Index("ix_hub_analytics_event_env_name_time", "environment_id", "name", "timestamp"),
    Index("ix_hub_analytics_event_env_flow_time", "environment_id", "flow_id", "timestamp"),
)

timer = Table(
    "hub_timer",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("environment_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),  # embargo_end | snooze_end | expiry | wait | delay
    Column("ref_id", String(64), nullable=False),  # the card or flow instance it concerns
    Column("due_at", UtcDateTime(), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("fired_at", UtcDateTime(), nullable=True),
    UniqueConstraint("kind", "ref_id", "due_at", name="uq_hub_timer_kind_ref_due"),
    Index("ix_hub_timer_pending", "fired_at", "due_at"),
)


push_notification = Table(
    "hub_push_notification",
    metadata,
    Column("id", String(36), primary_key=True),  # derived from what sends it: a re-run sends nothing new
    Column("environment_id", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("card_id", String(36), nullable=True),  # a card's push template; None for a push step
    Column("instance_id", String(36), nullable=True),
    Column("step_id", String(100), nullable=True),
    Column("scenario", String(32), nullable=True),  # newCard | unsnoozedCard | None (push step)
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("data", Json, nullable=False),
    Column("platforms", Json, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("ttl_seconds", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # scheduled | sent | failed | cancelled | skipped
    Column("due_at", UtcDateTime(), nullable=False),
    Column("rescheduled", Boolean, nullable=False),  # moved by the customer's notification windows
    Column("attempts", Integer, nullable=False),
    Column("deliveries", Json, nullable=False),  # deviceId -> {status, provider, detail, attempts, ...}
    Column("detail", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Index("ix_hub_push_notification_due", "status", "due_at"),
    Index("ix_hub_push_notification_card", "card_id"),
    Index("ix_hub_push_notification_user", "environment_id", "user_id", "created_at"),
)

push_delivery = Table(
    "hub_push_delivery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("environment_id", String(64), nullable=False),
    Column("notification_id", String(36), nullable=False),
    Column("user_id", String(255), nullable=False),  # so an erasure finds the customer's log too
    Column("device_id", String(64), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_hub_push_delivery_env_at", "environment_id", "at"),
    Index("ix_hub_push_delivery_user", "environment_id", "user_id"),
)


# --- tables of the built-in plugins ---------------------------------------------------------
# They ship in this distribution, so their tables join this metadata (one schema, checked
# against the migrations by tests/db/test_migrations.py). Each plugin keeps its own tables in
# ``plugins/<name>/tables.py`` and its migrations, an Alembic branch labelled with its name, in
# ``plugins/<name>/migrations/``.


def _import_builtin_plugin_tables() -> None:
    import importlib
    import pkgutil

    import hub_plugins

    for module in pkgutil.iter_modules(hub_plugins.__path__):
        if module.ispkg and importlib.util.find_spec(f"hub_plugins.{module.name}.tables"):
            importlib.import_module(f"hub_plugins.{module.name}.tables")


_import_builtin_plugin_tables()
