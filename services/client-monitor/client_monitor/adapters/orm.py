"""The client-monitor's own tables: its watches, and the clients still pending when one closed.

Per-client state of an open watch is not persisted: a restart re-does one full scan, which
is cheaper and simpler than writing a million rows on every scan.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from certrotate_shared.record_retention import requests_table

metadata = MetaData()

watches = Table(
    "propagation_watches",
    metadata,
    Column("watch_id", String(200), primary_key=True),
    Column("saga_id", String(200), nullable=False),
    Column("site", String(200), nullable=False),
    # open, propagated, stalled, cancelled, failed
    Column("status", String(20), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    # The AwaitPolicyPropagation envelope: the watch's terms, and the causation of its events.
    Column("command", Text, nullable=False),
    Column("counts", JSON),
    Column("outcome_type", String(100)),
    Column("outcome", JSON),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    # Which replica scans it, until when (real time): two replicas never scan one watch.
    Column("owner", String(200)),
    Column("lease_until", DateTime(timezone=True)),
    # Where the owning replica's API answers: other replicas forward live reads there.
    Column("owner_url", String(500)),
)

# The clients still pending when a watch closed, for remediation after a stall or a restart.
pending_clients = Table(
    "watch_pending_clients",
    metadata,
    Column("watch_id", String(200), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("unique_id", String(100), nullable=False),
    Column("computer_name", String(300), nullable=False),
    Column("group_path", String(1000), nullable=False),
    Column("online", Boolean, nullable=False),
    Column("last_update_ms", BigInteger, nullable=False),
    Column("days_offline", Float, nullable=False),
    Column("profile_serial", String(100), nullable=False),
    Column("stale", Boolean, nullable=False),
    Index("ix_watch_pending_clients_unique_id", "watch_id", "unique_id"),
)


def _client_columns() -> list[Column[object]]:
    return [
        Column("computer_name", String(300), nullable=False),
        Column("group_path", String(1000), nullable=False),
        Column("online", Boolean, nullable=False),
        Column("last_update_ms", BigInteger, nullable=False),
        Column("days_offline", Float, nullable=False),
        Column("profile_serial", String(100), nullable=False),
    ]


# At-risk lists an operator accepted (a "proceed"), frozen as they were at that moment: the
# orchestrator's history names the list by id, count and digest instead of holding the rows.
accepted_lists = Table(
    "accepted_lists",
    metadata,
    Column("list_id", String(64), primary_key=True),
    Column("watch_id", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("client_count", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

accepted_list_clients = Table(
    "accepted_list_clients",
    metadata,
    Column("list_id", String(64), primary_key=True),
    Column("unique_id", String(100), primary_key=True),
    *_client_columns(),
)

# Rotations the orchestrator reported ended, until purged here (record_retention).
retention_requests = requests_table(metadata)
