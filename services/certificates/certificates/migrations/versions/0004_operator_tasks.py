"""operator tasks in a table of their own, the shape every worker service keeps them in
(certrotate_shared.operator_task_lifecycle), instead of three columns of the job

Revision ID: c0004
Revises: c0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "c0004"
down_revision = "c0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tasks = op.create_table(
        "operator_tasks",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),  # open | confirmed | verified
        sa.Column("confirmed_by", sa.String(200)),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    )
    # A job waiting for a person keeps its open task; the tasks it was resumed with count as
    # done (the one it was last resumed by is still to be checked).
    jobs = sa.table(
        "jobs",
        sa.column("job_id", sa.String),
        sa.column("status", sa.String),
        sa.column("task_id", sa.String),
        sa.column("confirmed_tasks", sa.JSON),
        sa.column("resumed_by_task", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    rows = op.get_bind().execute(sa.select(jobs).where(jobs.c.task_id.is_not(None)))
    found: dict[str, dict[str, object]] = {}
    for row in rows:
        confirmed = row.confirmed_tasks
        if isinstance(confirmed, str):
            confirmed = json.loads(confirmed)
        for task_id in confirmed or []:
            status = "confirmed" if task_id == row.resumed_by_task else "verified"
            found[task_id] = {"job_id": row.job_id, "status": status}
        if row.status == "awaiting_operator":
            found[row.task_id] = {"job_id": row.job_id, "status": "open"}
        for entry in found.values():
            entry.setdefault("requested_at", row.updated_at)
    if found:
        op.bulk_insert(tasks, [{"task_id": task_id, **entry} for task_id, entry in found.items()])
    op.drop_index("ix_jobs_task_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("task_id")
        batch.drop_column("confirmed_tasks")
        batch.drop_column("resumed_by_task")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("task_id", sa.String(200)))
        batch.add_column(sa.Column("confirmed_tasks", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("resumed_by_task", sa.String(200)))
    op.create_index("ix_jobs_task_id", "jobs", ["task_id"])
    op.drop_table("operator_tasks")
