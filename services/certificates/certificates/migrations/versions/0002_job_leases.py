"""jobs are held with the shared lease (certrotate_shared.leases): who holds one, and when a
job that failed for now is due again (it used to borrow lease_until for that)

Revision ID: c0002
Revises: c0001
"""

import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("owner", sa.String(200)))
    op.add_column("jobs", sa.Column("next_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("jobs", "next_at")
    op.drop_column("jobs", "owner")
