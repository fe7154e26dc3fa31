"""subscriptions.may_approve: an ITSM tool may approve rotations by a signed reply

Revision ID: o0007
Revises: o0006
"""

import sqlalchemy as sa
from alembic import op

revision = "o0007"
down_revision = "o0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "subscriptions",
        sa.Column("may_approve", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("may_approve")
