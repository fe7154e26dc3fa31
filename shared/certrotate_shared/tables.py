"""The messaging tables every service has in its own schema: outbox, inbox, command outcomes."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
_id_type = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("message_type", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
Index("ix_inbox_received_at", inbox.c.received_at)

command_outcomes = Table(
    "command_outcomes",
    metadata,
    Column("idempotency_key", String(300), primary_key=True),
    Column("command_type", String(100), nullable=False),
    # The event that answered the command, replayed if the command comes again; NULL while
    # a long-running command (a watch, a wait) has been accepted but not finished.
    Column("outcome_type", String(100)),
    Column("outcome_version", Integer),
    Column("outcome_payload", JSON),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

vault_metadata = MetaData()

vault_secrets = Table(
    "vault_secrets",
    vault_metadata,
    Column("ref", String(200), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
