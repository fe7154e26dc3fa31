"""Migration c0004: the operator tasks a certificates job held in its own columns move to the
tasks table every worker keeps (certrotate_shared.operator_task_lifecycle), so an upgrade in
the middle of a manual swap loses neither the open task nor the ones a person already did.
PostgreSQL, and the embedded mode's SQLite (whose column drops are a table rebuild)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from certificates.adapters.orm import jobs, operator_tasks
from certificates.bootstrap import MIGRATIONS
from certrotate_shared.db import make_engine

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def upgrade_to(connection: Any, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = "alembic_version_certificates"
    command.upgrade(config, revision)


def job(job_id: str, status: str, task: str | None, confirmed: list[str], resumed: str | None):
    return {"job_id": job_id, "idempotency_key": f"k-{job_id}", "command_type": "UpdateServerCertificate",
            "saga_id": "s", "envelope": "{}", "status": status, "task_id": task,
            "confirmed_tasks": json.dumps(confirmed), "resumed_by_task": resumed,
            "attempts": 1, "created_at": T0, "updated_at": T0}  # fmt: skip


async def migrated(url: str, schema: str) -> tuple[dict[str, tuple[str, str]], set[str]]:
    engine = make_engine(url, schema)
    try:
        async with engine.begin() as conn:
            if url.startswith("postgresql"):
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(upgrade_to, "c0003")
            await conn.execute(
                text(
                    "INSERT INTO jobs (job_id, idempotency_key, command_type, saga_id, envelope,"
                    " status, task_id, confirmed_tasks, resumed_by_task, attempts, created_at,"
                    " updated_at) VALUES (:job_id, :idempotency_key, :command_type, :saga_id,"
                    " :envelope, :status, :task_id, :confirmed_tasks, :resumed_by_task,"
                    " :attempts, :created_at, :updated_at)"
                ),
                [
                    # Waits for a person to do task-b; task-a was done and borne out.
                    job("j1", "awaiting_operator", "task-b", ["task-a"], None),
                    # Just resumed by task-c's confirmation: still to be checked.
                    job("j2", "pending", "task-c", ["task-c"], "task-c"),
                    job("j3", "done", None, [], None),
                ],
            )
            await conn.run_sync(upgrade_to, "head")
            rows = (await conn.execute(select(operator_tasks))).all()
            statuses = set((await conn.execute(select(jobs.c.status))).scalars().all())
    finally:
        await engine.dispose()
    return {r.task_id: (r.job_id, r.status) for r in rows}, statuses


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_tasks_held_by_jobs_move_to_the_tasks_table(
    database: str, pg_url: str, pg_schemas: list[str], tmp_path: Path
) -> None:
    schema = f"certs_{uuid.uuid4().hex[:8]}"
    if database == "postgresql":
        pg_schemas.append(schema)
        url = pg_url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/certificates.db"

    tasks, statuses = await migrated(url, schema)

    assert tasks == {
        "task-a": ("j1", "verified"),
        "task-b": ("j1", "open"),
        "task-c": ("j2", "confirmed"),
    }
    assert statuses == {"awaiting_operator", "pending", "done"}
