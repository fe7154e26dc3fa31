"""Durable periodic jobs: one row per job with its next due time and a lease, so a job runs on
one replica at a time, a crash mid-run is retried once the lease lapses, and a restart neither
skips a due run nor repeats one that is not due."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, String, Text, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import Table
from orchestrator.adapters.repository import from_db, to_db

periodic_jobs = Table(
    "periodic_jobs",
    Column("name", String(60), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_run_at", DateTime(timezone=True)),
    Column("last_error", Text),
)


async def claim(session: AsyncSession, name: str, now: datetime, lease: timedelta) -> bool:
    """Take the job if it is due and nobody holds it; the caller commits."""
    dialect = session.get_bind().dialect.name
    first = (pg_insert if dialect == "postgresql" else sqlite_insert)(periodic_jobs)
    # Two replicas starting at once both try to create the row: one does, neither fails.
    await session.execute(first.values(name=name, due_at=to_db(now)).on_conflict_do_nothing())
    taken = await session.execute(
        update(periodic_jobs)
        .where(
            periodic_jobs.c.name == name,
            periodic_jobs.c.due_at <= to_db(now),
            (periodic_jobs.c.lease_until.is_(None)) | (periodic_jobs.c.lease_until < to_db(now)),
        )
        .values(lease_until=to_db(now + lease))
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession, name: str, *, now: datetime, next_due: datetime, error: str | None
) -> None:
    await session.execute(
        update(periodic_jobs)
        .where(periodic_jobs.c.name == name)
        .values(due_at=to_db(next_due), lease_until=None, last_run_at=to_db(now), last_error=error)
    )


async def due_at(session: AsyncSession, name: str) -> datetime | None:
    row = (
        await session.execute(select(periodic_jobs.c.due_at).where(periodic_jobs.c.name == name))
    ).first()
    return from_db(row.due_at) if row else None
