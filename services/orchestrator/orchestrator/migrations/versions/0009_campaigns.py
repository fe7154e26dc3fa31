"""campaigns: multi-site campaigns (a saga of rotation sagas), one row each

Revision ID: o0009
Revises: o0008
"""

import sqlalchemy as sa
from alembic import op

revision = "o0009"
down_revision = "o0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("body_hash", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("campaigns")
