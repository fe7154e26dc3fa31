"""webhook sources and secrets, deliveries received, rotation waits, subscriptions, callbacks

Revision ID: o0003
Revises: o0002
"""

import sqlalchemy as sa
from alembic import op

revision = "o0003"
down_revision = "o0002"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_sources",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("vault_ref", sa.String(200), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("expires_at", _ts),
    )
    op.create_index("ix_webhook_secrets_source", "webhook_secrets", ["source"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("webhook_id", sa.String(200), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", _ts, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("rotation_id", sa.String(36), nullable=False),
    )
    op.create_table(
        "rotation_waits",
        sa.Column("rotation_id", sa.String(36), primary_key=True),
        sa.Column("blocker_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_rotation_waits_blocker", "rotation_waits", ["blocker_id"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("site", sa.String(200)),
        sa.Column("change_id", sa.String(200)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("vault_ref", sa.String(200), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "callback_deliveries",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(60), nullable=False),
        sa.Column("rotation_id", sa.String(36)),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("window_start", _ts),
        sa.Column("next_attempt_at", _ts, nullable=False),
        sa.Column("leased_until", _ts),
        sa.Column("last_attempt_at", _ts),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("response_prefix", sa.Text),
        sa.Column("delivered_at", _ts),
    )
    op.create_index("ix_callback_due", "callback_deliveries", ["status", "next_attempt_at"])
    op.create_index(
        "ix_callback_order", "callback_deliveries", ["subscription_id", "rotation_id", "id"]
    )
