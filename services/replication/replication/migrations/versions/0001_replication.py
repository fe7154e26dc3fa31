"""replication operations, partner steps, broken partnerships, operator tasks

Revision ID: rep0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "rep0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replication_operations",
        sa.Column("op_key", sa.String(300), primary_key=True),
        sa.Column("saga_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True)),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("outcome_type", sa.String(100)),
        sa.Column("outcome", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_replication_operations_status", "replication_operations", ["status"])
    op.create_index("ix_replication_operations_saga", "replication_operations", ["saga_id"])
    op.create_table(
        "replication_partner_steps",
        sa.Column("op_key", sa.String(300), primary_key=True),
        sa.Column("partner", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("task_id", sa.String(200)),
        sa.Column("baseline_run_ms", sa.BigInteger),
        sa.Column("baseline_success_ms", sa.BigInteger),
        sa.Column("status_code", sa.String(40)),
        sa.Column("last_success_ms", sa.BigInteger),
        sa.Column("deadline", sa.DateTime(timezone=True)),
        sa.Column("polls", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "replication_broken_partnerships",
        sa.Column("saga_id", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(200), primary_key=True),
        sa.Column("partner", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("op_key", sa.String(300), nullable=False),
        sa.Column("broken_at", sa.DateTime(timezone=True)),
        sa.Column("restored_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "replication_operator_tasks",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("op_key", sa.String(300), nullable=False),
        sa.Column("partner", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("confirmed_by", sa.String(200)),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    )
