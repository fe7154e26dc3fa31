"""Durable periodic jobs: one row per job with its next due time, held while a replica runs it
by the shared lease of long-running work (`owner`, `lease_until`: certrotate_shared.leases),
so a job runs on one replica at a time, a run cut short is taken up again once its hold runs
out, and a restart neither skips a due run nor repeats one that is not due."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, String, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.leases import LeasedTable
from orchestrator.adapters.orm import Table
from orchestrator.adapters.repository import from_db, to_db

periodic_jobs = Table(
    "periodic_jobs",
    Column("name", String(60), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("owner", String(200)),  # the replica running it (certrotate_shared.leases)
    Column("lease_until", DateTime(timezone=True)),
    Column("last_run_at", DateTime(timezone=True)),
    Column("last_error", Text),
)


def due_jobs(now: datetime) -> LeasedTable:
    """The jobs as leased work: a row may be taken once it is due."""
    return LeasedTable(periodic_jobs, "name", open=lambda: periodic_jobs.c.due_at <= to_db(now))


async def ensure(session: AsyncSession, name: str, *, due_at: datetime) -> None:
    """The job's row, due at `due_at` if it has none yet; the caller commits."""
    dialect = session.get_bind().dialect.name
    first = (pg_insert if dialect == "postgresql" else sqlite_insert)(periodic_jobs)
    # Two replicas starting at once both try to create the row: one does, neither fails.
    await session.execute(first.values(name=name, due_at=to_db(due_at)).on_conflict_do_nothing())


def finished(*, now: datetime, next_due: datetime, error: str | None) -> dict[str, Any]:
    """What a run writes as it lets the job go."""
    return {"due_at": to_db(next_due), "last_run_at": to_db(now), "last_error": error}


async def row(session: AsyncSession, name: str) -> Any:
    return (
        await session.execute(select(periodic_jobs).where(periodic_jobs.c.name == name))
    ).first()


async def due_at(session: AsyncSession, name: str) -> datetime | None:
    found = await row(session, name)
    return from_db(found.due_at) if found else None
