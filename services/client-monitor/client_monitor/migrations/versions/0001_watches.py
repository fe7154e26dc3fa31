"""propagation watches and the clients pending when a watch closed

Revision ID: cm0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "cm0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "propagation_watches",
        sa.Column("watch_id", sa.String(200), primary_key=True),
        sa.Column("saga_id", sa.String(200), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("counts", sa.JSON),
        sa.Column("outcome_type", sa.String(100)),
        sa.Column("outcome", sa.JSON),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_propagation_watches_status", "propagation_watches", ["status"])
    op.create_table(
        "watch_pending_clients",
        sa.Column("watch_id", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("unique_id", sa.String(100), nullable=False),
        sa.Column("computer_name", sa.String(300), nullable=False),
        sa.Column("group_path", sa.String(1000), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("last_update_ms", sa.BigInteger, nullable=False),
        sa.Column("days_offline", sa.Float, nullable=False),
        sa.Column("profile_serial", sa.String(100), nullable=False),
        sa.Column("stale", sa.Boolean, nullable=False),
    )
