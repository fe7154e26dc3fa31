"""The replication service's own tables.

- `replication_operations`: one row per BreakReplication / RestoreReplication command, worked
  on by the background worker until its outcome is emitted (a restart resumes it).
- `replication_partner_steps`: where each listed partner of an operation stands.
- `replication_broken_partnerships`: exactly which partnerships each saga broke; written
  *before* the host operation runs, so a crash cannot forget a deletion it made.
- `replication_operator_tasks`: host operations handed to a person (the manual driver).
- `retention_requests`: rotations the orchestrator reported ended, until purged here
  (certrotate_shared.record_retention).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from certrotate_shared.record_retention import requests_table

metadata = MetaData()

operations = Table(
    "replication_operations",
    metadata,
    Column("op_key", String(300), primary_key=True),  # the command's idempotency key
    Column("saga_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # break | restore
    Column("site", String(200), nullable=False),
    Column("command", Text, nullable=False),  # the command's envelope (terms and causation)
    Column("status", String(20), nullable=False),  # active | done
    # When the worker should look again (clock time); NULL = now.
    Column("next_at", DateTime(timezone=True)),
    # Which replica works on it, until when (real time).
    Column("owner", String(200)),
    Column("lease_until", DateTime(timezone=True)),
    Column("outcome_type", String(100)),
    Column("outcome", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)

partner_steps = Table(
    "replication_partner_steps",
    metadata,
    Column("op_key", String(300), primary_key=True),
    Column("partner", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
    # break: pending, deleting, operator, broken, absent
    # restore: pending, adding, operator, replicating, succeeded
    Column("phase", String(20), nullable=False),
    Column("task_id", String(200)),
    Column("baseline_run_ms", BigInteger),
    Column("baseline_success_ms", BigInteger),
    Column("status_code", String(40)),
    Column("last_success_ms", BigInteger),
    Column("deadline", DateTime(timezone=True)),
    Column("polls", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

broken_partnerships = Table(
    "replication_broken_partnerships",
    metadata,
    Column("saga_id", String(200), primary_key=True),
    Column("site", String(200), primary_key=True),
    Column("partner", String(200), primary_key=True),
    Column("state", String(20), nullable=False),  # deleting | broken | restored
    Column("op_key", String(300), nullable=False),
    Column("broken_at", DateTime(timezone=True)),
    Column("restored_at", DateTime(timezone=True)),
)

operator_tasks = Table(
    "replication_operator_tasks",
    metadata,
    Column("task_id", String(200), primary_key=True),
    Column("op_key", String(300), nullable=False),
    Column("partner", String(200), nullable=False),
    Column("action", String(20), nullable=False),  # delete | add
    Column("status", String(20), nullable=False),  # open | confirmed | verified
    Column("confirmed_by", String(200)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
)

retention_requests = requests_table(metadata)
