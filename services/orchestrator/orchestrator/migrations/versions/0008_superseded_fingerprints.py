"""sites.superseded_fingerprints: the certificates the last completed rotation replaced

Revision ID: o0008
Revises: o0007
"""

import sqlalchemy as sa
from alembic import op

revision = "o0008"
down_revision = "o0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("superseded_fingerprints", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("superseded_fingerprints")
