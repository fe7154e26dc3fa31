"""sites.maintenance_window: a site's own window (cron, duration, time zone) for campaigns

Revision ID: o0012
Revises: o0011
"""

import sqlalchemy as sa
from alembic import op

revision = "o0012"
down_revision = "o0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("maintenance_window", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("maintenance_window")
