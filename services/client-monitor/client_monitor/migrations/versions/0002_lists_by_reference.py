"""accepted at-risk lists kept by reference, the saved lists in uniqueId order, and where the
replica that owns a watch answers

Revision ID: cm0002
Revises: cm0001
"""

import sqlalchemy as sa
from alembic import op

revision = "cm0002"
down_revision = "cm0001"
branch_labels = None
depends_on = None


def _client_columns() -> list[sa.Column]:
    return [
        sa.Column("computer_name", sa.String(300), nullable=False),
        sa.Column("group_path", sa.String(1000), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("last_update_ms", sa.BigInteger, nullable=False),
        sa.Column("days_offline", sa.Float, nullable=False),
        sa.Column("profile_serial", sa.String(100), nullable=False),
    ]


def _unique_id() -> sa.String:
    # Lists are ordered by uniqueId in code-point order, the order Python sorts a live list in
    # (SQLite's default); PostgreSQL would otherwise sort by the database's locale.
    if op.get_bind().dialect.name == "postgresql":
        return sa.String(100, collation="C")
    return sa.String(100)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("watch_pending_clients", "unique_id", type_=_unique_id())
    op.add_column("propagation_watches", sa.Column("owner_url", sa.String(500)))
    op.create_index(
        "ix_watch_pending_clients_unique_id", "watch_pending_clients", ["watch_id", "unique_id"]
    )
    op.create_table(
        "accepted_lists",
        sa.Column("list_id", sa.String(64), primary_key=True),
        sa.Column("watch_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("client_count", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "accepted_list_clients",
        sa.Column("list_id", sa.String(64), primary_key=True),
        sa.Column("unique_id", _unique_id(), primary_key=True),
        *_client_columns(),
    )
