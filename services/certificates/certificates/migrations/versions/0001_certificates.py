"""certificate store, verification originals, server backups, jobs

Revision ID: c0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundles",
        sa.Column("bundle_ref", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("referenced_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "verification_originals",
        sa.Column("saga_id", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(200), primary_key=True),
        sa.Column("group_id", sa.String(200), primary_key=True),
        sa.Column("location_id", sa.String(200), primary_key=True),
        sa.Column("full_path_name", sa.Text, nullable=False),
        sa.Column("original", sa.Boolean, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "server_backups",
        sa.Column("saga_id", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(200), primary_key=True),
        sa.Column("server", sa.String(200), primary_key=True),
        sa.Column("backup_ref", sa.String(200), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(300), nullable=False, unique=True),
        sa.Column("command_type", sa.String(100), nullable=False),
        sa.Column("saga_id", sa.String(200), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("task_id", sa.String(200)),
        sa.Column("confirmed_tasks", sa.JSON, nullable=False),
        sa.Column("resumed_by_task", sa.String(200)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_task_id", "jobs", ["task_id"])
