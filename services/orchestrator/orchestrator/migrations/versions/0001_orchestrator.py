"""sagas, history, timers, idempotency keys, API tokens, inventory, operator tasks

Revision ID: o0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "o0001"
down_revision = None
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sagas",
        sa.Column("saga_id", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("step", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_index("ix_sagas_created", "sagas", ["created_at", "saga_id"])
    op.create_table(
        "saga_history",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("saga_id", sa.String(36), nullable=False),
        sa.Column("at", _ts, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("step", sa.String(60)),
        sa.Column("message_id", sa.String(36)),
        sa.Column("causation_id", sa.String(36)),
        sa.Column("actor", sa.String(200)),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_saga_history_saga", "saga_history", ["saga_id", "id"])
    op.create_table(
        "timers",
        sa.Column("saga_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("due_at", _ts, nullable=False),
    )
    op.create_index("ix_timers_due", "timers", ["due_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("saga_id", sa.String(36), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", _ts),
    )
    op.create_table(
        "sites",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("api_url", sa.String(500), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("replication_partners", sa.JSON, nullable=False),
        sa.Column("trusted_certificates_pem", sa.JSON, nullable=False),
        sa.Column("host_ops_driver", sa.String(20), nullable=False),
        sa.Column("host_ops_endpoint", sa.String(500)),
        sa.Column("credentials_set", sa.Boolean, nullable=False),
        sa.Column("host_ops_credentials_set", sa.Boolean, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_table(
        "servers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("hostnames", sa.JSON, nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("ports", sa.JSON, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_index("ix_servers_site", "servers", ["site"])
    op.create_table(
        "operator_tasks",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("saga_id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(30), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("server", sa.String(200)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("verification", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("causation_id", sa.String(36)),
        sa.Column("requested_at", _ts, nullable=False),
        sa.Column("confirmed_by", sa.String(200)),
        sa.Column("confirmed_at", _ts),
        sa.Column("confirmations", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.Text),
    )
    op.create_index("ix_operator_tasks_saga", "operator_tasks", ["saga_id"])
