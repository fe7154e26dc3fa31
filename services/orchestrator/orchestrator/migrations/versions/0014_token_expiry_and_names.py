"""api_tokens: an optional expiry, and live token names unique in the database

Revision ID: o0014
Revises: o0013
"""

import sqlalchemy as sa
from alembic import op

revision = "o0014"
down_revision = "o0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
    # Live tokens that share a name (made before the API refused it) keep working: the later
    # ones are renamed "<name> (<id prefix>)" so the index can hold, rather than revoked.
    conn = op.get_bind()
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("revoked_at", sa.DateTime),
    )
    live = conn.execute(
        sa.select(tokens.c.id, tokens.c.name)
        .where(tokens.c.revoked_at.is_(None))
        .order_by(tokens.c.created_at, tokens.c.id)
    ).all()
    seen: set[str] = set()
    for token_id, name in live:
        if name in seen:
            conn.execute(
                sa.update(tokens)
                .where(tokens.c.id == token_id)
                .values(name=f"{name[:180]} ({token_id[:8]})")
            )
        seen.add(name)
    op.create_index(
        "uq_api_tokens_live_name",
        "api_tokens",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_api_tokens_live_name", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
