"""The certificates service's own tables (its schema; messaging tables live beside them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Uploaded bundles. `sealed` is AES-GCM under the master key, bound to bundle_ref; it holds
# the file, its password and (PEM) its key. Everything else is public certificate data.
bundles = Table(
    "bundles",
    metadata,
    Column("bundle_ref", String(64), primary_key=True),
    Column("site", String(200), nullable=False),
    Column("format", String(10), nullable=False),
    Column("fingerprint_sha256", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Set when the orchestrator holds the bundle (a rotation, a campaign or an upload names it)
    # or a command first names it; only bundles never held expire by TTL (leftovers of a
    # request that failed after pre-flight). Held ones go when their owner's retention ends.
    Column("referenced_at", DateTime(timezone=True)),
)

# What SetCertificateVerification(disable) found, per saga: "restore" puts back exactly this.
verification_originals = Table(
    "verification_originals",
    metadata,
    Column("saga_id", String(200), primary_key=True),
    Column("site", String(200), primary_key=True),
    Column("group_id", String(200), primary_key=True),
    Column("location_id", String(200), primary_key=True),
    Column("full_path_name", Text, nullable=False),
    Column("original", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# The first backup taken for a server in a saga: the one rollback must restore, even when a
# later attempt runs after the new certificate was already installed. After the rotation's
# retention the row stays until the backup's files are deleted from the host (a
# DeleteServerBackup job), so a crash between the two never loses track of them.
server_backups = Table(
    "server_backups",
    metadata,
    Column("saga_id", String(200), primary_key=True),
    Column("site", String(200), primary_key=True),
    Column("server", String(200), primary_key=True),
    Column("backup_ref", String(200), nullable=False),
    Column("fingerprint_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deletion_requested_at", DateTime(timezone=True)),
)

# Long-running commands, run outside the consumer's transaction and resumed after a crash.
jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("command_type", String(100), nullable=False),
    Column("saga_id", String(200), nullable=False),
    Column("envelope", Text, nullable=False),  # the command as received (no secrets in it)
    # pending -> running -> done; running -> awaiting_operator -> pending (on confirmation)
    Column("status", String(20), nullable=False, index=True),
    Column("owner", String(200)),  # the replica holding the job (certrotate_shared.leases)
    Column("lease_until", DateTime(timezone=True)),
    Column("next_at", DateTime(timezone=True)),  # a job that failed for now is due again then
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Set when the rotation's records were purged while the job was unfinished, or when the
    # purge queued it (a backup's deletion): finished, nothing can ask for it again, so
    # housekeeping forgets it then.
    Column("rotation_purged_at", DateTime(timezone=True)),
)

# Host operations handed to a person (certrotate_shared.operator_task_lifecycle).
operator_tasks = Table(
    "operator_tasks",
    metadata,
    Column("task_id", String(200), primary_key=True),
    Column("job_id", String(36), nullable=False, index=True),
    Column("status", String(20), nullable=False),  # open | confirmed | verified
    Column("confirmed_by", String(200)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
)
