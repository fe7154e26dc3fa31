"""Tables of webhook sources, deliveries received, subscriptions and callbacks to send."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, String, Text, false

from orchestrator.adapters.orm import Table, _id_type

webhook_sources = Table(
    "webhook_sources",
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# Several per source, so a sender can switch to a new secret while the old one still works.
webhook_secrets = Table(
    "webhook_secrets",
    Column("id", String(36), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("vault_ref", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
)
Index("ix_webhook_secrets_source", webhook_secrets.c.source)

# Accepted deliveries only, so a retried webhook-id gets the answer it got the first time.
webhook_deliveries = Table(
    "webhook_deliveries",
    Column("source", String(64), primary_key=True),
    Column("webhook_id", String(200), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("answer", JSON, nullable=False),
    Column("rotation_id", String(36), nullable=False),
)

# A rotation started by a superseding trigger waits (held) until these rotations have ended.
rotation_waits = Table(
    "rotation_waits",
    Column("rotation_id", String(36), primary_key=True),
    Column("blocker_id", String(36), primary_key=True),
)
Index("ix_rotation_waits_blocker", rotation_waits.c.blocker_id)

subscriptions = Table(
    "subscriptions",
    Column("id", String(36), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("site", String(200)),
    Column("change_id", String(200)),
    Column("description", Text, nullable=False),
    Column("vault_ref", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    # The ITSM tool may approve rotations by a signed reply (migration o0007).
    Column("may_approve", Boolean, nullable=False, server_default=false()),
)

# The outbox of callbacks: written in the transaction of the state change they report.
callback_deliveries = Table(
    "callback_deliveries",
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("subscription_id", String(36), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("rotation_id", String(36)),
    Column("payload", JSON, nullable=False),
    # pending | delivered | failed
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Start of the retry window (a redelivery starts a new one).
    Column("window_start", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("leased_until", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("response_prefix", Text),
    Column("delivered_at", DateTime(timezone=True)),
)
Index("ix_callback_due", callback_deliveries.c.status, callback_deliveries.c.next_attempt_at)
Index(
    "ix_callback_order",
    callback_deliveries.c.subscription_id,
    callback_deliveries.c.rotation_id,
    callback_deliveries.c.id,
)
