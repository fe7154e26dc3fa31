"""dead_letters: messages a consumer parked in the DLQ, shown to operators and replayable once

Revision ID: o0004
Revises: o0003
"""

import sqlalchemy as sa
from alembic import op

revision = "o0004"
down_revision = "o0003"
branch_labels = None
depends_on = None

_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("saga_id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(60), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("message_type", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(300)),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("envelope", sa.JSON, nullable=False),
        sa.Column("reported_at", _ts, nullable=False),
        sa.Column("replayed_at", _ts),
        sa.Column("replayed_by", sa.String(200)),
        # A parked record is reported once however often the report is delivered.
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_record"),
    )  # fmt: skip
    op.create_index("ix_dead_letters_saga", "dead_letters", ["saga_id"])
