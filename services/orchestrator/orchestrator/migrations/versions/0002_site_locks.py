"""site_locks: one row per site held by its active rotation (one rotation per replication farm)

Revision ID: o0002
Revises: o0001
"""

import sqlalchemy as sa
from alembic import op

revision = "o0002"
down_revision = "o0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_locks",
        sa.Column("site", sa.String(200), primary_key=True),
        sa.Column("saga_id", sa.String(36), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_site_locks_saga", "site_locks", ["saga_id"])
    # Rotations already active keep their site (the oldest one wins if several ran at once).
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT site, saga_id, created_at FROM sagas WHERE status NOT IN "
            "('completed', 'compensated', 'failed') ORDER BY created_at"
        )
    ).all()
    held: set[str] = set()
    locks = sa.table(
        "site_locks", sa.column("site"), sa.column("saga_id"), sa.column("acquired_at")
    )
    for row in rows:
        if row.site not in held:
            held.add(row.site)
            bind.execute(
                locks.insert().values(
                    site=row.site, saga_id=row.saga_id, acquired_at=row.created_at
                )
            )


def downgrade() -> None:
    op.drop_index("ix_site_locks_saga", "site_locks")
    op.drop_table("site_locks")
