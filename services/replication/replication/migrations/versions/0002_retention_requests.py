"""retention requests: rotations the orchestrator reported ended, until purged here

Revision ID: rep0002
Revises: rep0001
"""

import sqlalchemy as sa
from alembic import op

revision = "rep0002"
down_revision = "rep0001"
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
