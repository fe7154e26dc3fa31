"""sites.tags: labels a campaign can target (e.g. "emea", "prod")

Revision ID: o0010
Revises: o0009
"""

import sqlalchemy as sa
from alembic import op

revision = "o0010"
down_revision = "o0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("tags", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("tags")
