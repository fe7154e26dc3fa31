"""retention: durable periodic jobs, what the retention job has purged, bundles' last use

Revision ID: o0013
Revises: o0012
"""

import sqlalchemy as sa
from alembic import op

revision = "o0013"
down_revision = "o0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "periodic_jobs",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_run_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "retention_purges",
        sa.Column("owner_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("uploaded_bundles") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("uploaded_bundles") as batch:
        batch.drop_column("last_used_at")
    op.drop_table("retention_purges")
    op.drop_table("periodic_jobs")
