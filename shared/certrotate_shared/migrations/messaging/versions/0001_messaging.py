"""outbox, inbox and command outcomes

Revision ID: m0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "m0001"
down_revision = None
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("message_type", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])
    op.create_table(
        "command_outcomes",
        sa.Column("idempotency_key", sa.String(300), primary_key=True),
        sa.Column("command_type", sa.String(100), nullable=False),
        sa.Column("outcome_type", sa.String(100)),
        sa.Column("outcome_version", sa.Integer),
        sa.Column("outcome_payload", sa.JSON),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
