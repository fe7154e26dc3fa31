"""jobs: when their rotation's records were purged (a job unfinished then, or queued by the
purge), so that housekeeping forgets it once it has finished

Revision ID: c0005
Revises: c0004
"""

import sqlalchemy as sa
from alembic import op

revision = "c0005"
down_revision = "c0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("rotation_purged_at", sa.DateTime(timezone=True)))
    # Every backup deletion so far was queued by a purge, which is how they were told apart.
    op.execute(
        "UPDATE jobs SET rotation_purged_at = created_at WHERE command_type = 'DeleteServerBackup'"
    )


def downgrade() -> None:
    op.drop_column("jobs", "rotation_purged_at")
