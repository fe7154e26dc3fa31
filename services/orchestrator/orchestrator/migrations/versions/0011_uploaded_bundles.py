"""uploaded_bundles: certificate bundles uploaded once and named by reference

Revision ID: o0011
Revises: o0010
"""

import sqlalchemy as sa
from alembic import op

revision = "o0011"
down_revision = "o0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploaded_bundles",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True)),
        sa.Column("sans", sa.JSON, nullable=False),
        sa.Column("certificate_pem", sa.Text, nullable=False),
        sa.Column("site", sa.String(200)),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("uploaded_bundles")
