"""The orchestrator's own tables (the messaging tables come from certrotate_shared)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Table as _Table
from sqlalchemy.sql.schema import SchemaItem

metadata = MetaData()
_id_type = BigInteger().with_variant(Integer(), "sqlite")


def Table(name: str, *columns: SchemaItem) -> _Table:
    return _Table(name, metadata, *columns)


sagas = Table(
    "sagas",
    Column("saga_id", String(36), primary_key=True),
    Column("site", String(200), nullable=False),
    Column("status", String(30), nullable=False),
    Column("step", String(60), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The ITSM change record, to look rotations up by it (migration o0005).
    Column("change_id", String(200)),
)
Index("ix_sagas_created", sagas.c.created_at, sagas.c.saga_id)
Index("ix_sagas_change_id", sagas.c.change_id)

saga_history = Table(
    "saga_history",
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("saga_id", String(36), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # command | event | ignored | timer | operator | note
    Column("kind", String(20), nullable=False),
    Column("type", String(100), nullable=False),
    Column("step", String(60)),
    Column("message_id", String(36)),
    Column("causation_id", String(36)),
    Column("actor", String(200)),
    Column("detail", JSON),
)
Index("ix_saga_history_saga", saga_history.c.saga_id, saga_history.c.id)

timers = Table(
    "timers",
    Column("saga_id", String(36), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
)
Index("ix_timers_due", timers.c.due_at)

idempotency_keys = Table(
    "idempotency_keys",
    Column("key", String(200), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("saga_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A site held by its active rotation: the primary key lets one rotation per site (and, as the
# creating transaction locks every site of the replication farm, per farm) win a race.
site_locks = Table(
    "site_locks",
    Column("site", String(200), primary_key=True),
    Column("saga_id", String(36), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
)
Index("ix_site_locks_saga", site_locks.c.saga_id)

api_tokens = Table(
    "api_tokens",
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    # After this instant the token is refused (migration o0014); None: until revoked.
    Column("expires_at", DateTime(timezone=True)),
)
# The history and the audit log name tokens: two live tokens never share a name (o0014).
Index(
    "uq_api_tokens_live_name",
    api_tokens.c.name,
    unique=True,
    postgresql_where=api_tokens.c.revoked_at.is_(None),
    sqlite_where=api_tokens.c.revoked_at.is_(None),
)

sites = Table(
    "sites",
    Column("name", String(200), primary_key=True),
    Column("api_url", String(500), nullable=False),
    Column("version", String(50), nullable=False),
    Column("replication_partners", JSON, nullable=False),
    Column("trusted_certificates_pem", JSON, nullable=False),
    Column("host_ops_driver", String(20), nullable=False),
    Column("host_ops_endpoint", String(500)),
    Column("credentials_set", Boolean, nullable=False),
    Column("host_ops_credentials_set", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # sha256 of the certificates the last completed rotation replaced: still trusted until the
    # next rotation completes, then dropped from the trust set.
    Column("superseded_fingerprints", JSON),
    # Labels a campaign can target ("tag:emea"); NULL on rows older than migration o0010.
    Column("tags", JSON),
    # The site's own maintenance window (migration o0011): campaigns start and swap in it.
    Column("maintenance_window", JSON),
)

servers = Table(
    "servers",
    Column("name", String(200), primary_key=True),
    Column("site", String(200), nullable=False),
    Column("address", String(300), nullable=False),
    Column("hostnames", JSON, nullable=False),
    Column("version", String(50), nullable=False),
    Column("ports", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_servers_site", servers.c.site)

operator_tasks = Table(
    "operator_tasks",
    Column("task_id", String(200), primary_key=True),
    Column("saga_id", String(36), nullable=False),
    Column("service", String(30), nullable=False),
    Column("site", String(200), nullable=False),
    Column("server", String(200)),
    Column("title", Text, nullable=False),
    Column("instructions", Text, nullable=False),
    Column("verification", Text, nullable=False),
    # open | confirmed | done
    Column("status", String(20), nullable=False),
    Column("causation_id", String(36)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_by", String(200)),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("confirmations", Integer, nullable=False),
    Column("last_failure", Text),
)
Index("ix_operator_tasks_saga", operator_tasks.c.saga_id)

dead_letters = Table(
    "dead_letters",
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("saga_id", String(36), nullable=False),
    Column("service", String(60), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("message_type", String(100), nullable=False),
    Column("idempotency_key", String(300)),
    Column("topic", String(300), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("envelope", JSON, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("replayed_at", DateTime(timezone=True)),
    Column("replayed_by", String(200)),
    UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_record"),
)
Index("ix_dead_letters_saga", dead_letters.c.saga_id)
