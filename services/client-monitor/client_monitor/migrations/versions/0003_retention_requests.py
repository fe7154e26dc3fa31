"""retention requests: rotations the orchestrator reported ended, until purged here

Revision ID: cm0003
Revises: cm0002
"""

import sqlalchemy as sa
from alembic import op

revision = "cm0003"
down_revision = "cm0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_requests",
        sa.Column("saga_id", sa.String(200), primary_key=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("retention_requests")
