"""periodic_jobs: the replica holding a job, so that it runs under the shared lease of
long-running work (certrotate_shared.leases) like every worker's jobs

Revision ID: o0015
Revises: o0014
"""

import sqlalchemy as sa
from alembic import op

revision = "o0015"
down_revision = "o0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A hold taken before the upgrade has no owner, which the lease counts as free.
    with op.batch_alter_table("periodic_jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("periodic_jobs") as batch:
        batch.drop_column("owner")
