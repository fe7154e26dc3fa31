"""auth_failures: failed bearer-token authentications per client address, shared by every
replica so that the API's limit holds across them (service_layer/auth_failures.py)

Revision ID: o0016
Revises: o0015
"""

import sqlalchemy as sa
from alembic import op

revision = "o0016"
down_revision = "o0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each replica counted in memory before: the count starts empty, as after a restart.
    op.create_table(
        "auth_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("address", sa.String(100), nullable=False),
        sa.Column("failed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_auth_failures_address", "auth_failures", ["address", "failed_at"])
    op.create_index("ix_auth_failures_failed_at", "auth_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failures_failed_at", "auth_failures")
    op.drop_index("ix_auth_failures_address", "auth_failures")
    op.drop_table("auth_failures")
