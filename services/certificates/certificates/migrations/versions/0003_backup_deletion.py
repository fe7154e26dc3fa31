"""server backups: when retention asked for the backup's deletion on its host

Revision ID: c0003
Revises: c0002
"""

import sqlalchemy as sa
from alembic import op

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("server_backups", sa.Column("deletion_requested_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("server_backups", "deletion_requested_at")
