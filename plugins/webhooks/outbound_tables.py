"""Tables of the outbound webhooks: subscriptions, events waiting for delivery, the delivery log.

Their migrations are the Alembic branch ``webhooks_out`` in ``migrations/``. A pending row is the
promise that an analytics event (kept in the core's ``hub_analytics_event``) will reach one
subscription: the delivery job inserts it from the subscription's Redis inbox (or the hook, for
a paused subscription; or a replay) and deletes it only after the receiver answered 2xx, so
nothing is lost when a worker dies in between.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from hub.db.tables import metadata
from hub.db.types import BigId, Json, UtcDateTime

subscription = Table(
    "hub_webhooks_out_subscription",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("environment_id", String(64), ForeignKey(
        "hub_environment.id", ondelete="CASCADE", name="fk_hub_webhooks_out_subscription_env"),
        nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(500), nullable=False),
    Column("event_types", Json, nullable=False),  # analytics event names; empty: all
    Column("flow_ids", Json, nullable=False),  # flowConfigIds; empty: all
    Column("headers", Json, nullable=False),  # custom request headers
    Column("secret", Text, nullable=False),  # encrypted signing key
    Column("previous_secret", Text, nullable=True),  # still signs until previous_secret_until
    Column("previous_secret_until", UtcDateTime(), nullable=True),
    Column("state", String(16), nullable=False),  # active | paused
    Column("paused_reason", Text, nullable=True),
    Column("paused_at", UtcDateTime(), nullable=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=True),  # backing off until then
    Column("last_success_at", UtcDateTime(), nullable=True),
    Column("last_failure_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_hub_webhooks_out_subscription_env", "environment_id", "created_at", "id"),
)

pending = Table(
    "hub_webhooks_out_pending",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),  # delivery order
    Column("subscription_id", String(36), ForeignKey(
        "hub_webhooks_out_subscription.id", ondelete="CASCADE", name="fk_hub_webhooks_out_pending_sub"),
        nullable=False),
    Column("environment_id", String(64), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("batch_id", String(40), nullable=True),  # set when the event joins a delivery
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("subscription_id", "event_id", name="uq_hub_webhooks_out_pending_sub_event"),
    Index("ix_hub_webhooks_out_pending_sub_seq", "subscription_id", "seq"),
)

delivery = Table(
    "hub_webhooks_out_delivery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", String(36), ForeignKey(
        "hub_webhooks_out_subscription.id", ondelete="CASCADE", name="fk_hub_webhooks_out_delivery_sub"),
        nullable=False),
    Column("environment_id", String(64), nullable=False),
    Column("webhook_id", String(40), nullable=False),  # the webhook-id header (batch id)
    Column("kind", String(16), nullable=False),  # events | test
    Column("event_count", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # delivered | failed
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response_snippet", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_hub_webhooks_out_delivery_sub_id", "subscription_id", "id"),
    Index("ix_hub_webhooks_out_delivery_created", "created_at"),
)
