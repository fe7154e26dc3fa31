"""One saga's long-running commands run in the order they arrived, even after a crash left an
earlier one unfinished (found end to end: a restore overtook the abandoned disable, found
nothing to restore, and the late disable then left verification off). Real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certificates.adapters.jobs import JOBS, JobTable, add_job, finish_job
from certificates.adapters.orm import metadata
from certrotate_shared.clock import ManualClock
from certrotate_shared.db import make_engine, session_factory
from certrotate_shared.envelope import Envelope
from certrotate_shared.leases import Lease
from certrotate_shared.messages.certificates import SetCertificateVerification
from tests.unit.certificates.fakes import site

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(
    pg_url: str, pg_schemas: list[str]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    schema = f"jobs_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    engine = make_engine(pg_url, schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


async def queue(
    sessions: async_sessionmaker[AsyncSession], saga: str, mode: str, at: datetime
) -> str:
    key = f"{saga}/{mode}"
    command = SetCertificateVerification(idempotency_key=key, site=site(), mode=mode)
    async with sessions() as session:
        await add_job(session, Envelope.wrap(command, saga_id=saga), key, at)
        await session.commit()
    return key


async def claimed(
    sessions: async_sessionmaker[AsyncSession], lease: Lease, now: datetime
) -> list[str]:
    """What one replica's work runner takes now."""
    table = JobTable()
    async with sessions() as session:
        due = await table.due(session, lease, now=now, limit=8)
        taken = [w for w in due if await lease.take(session, w.key, **table.taken(now))]
        await session.commit()
    return sorted(w.details.idempotency_key for w in taken)


async def test_a_sagas_later_job_waits_for_its_earlier_one_others_do_not(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    wall = ManualClock(T0)
    killed = Lease(JOBS, owner="replica-1", seconds=60, clock=wall)
    survivor = Lease(JOBS, owner="replica-2", seconds=60, clock=wall)
    await queue(sessions, "saga-a", "disable", T0)
    await queue(sessions, "saga-a", "restore", T0 + timedelta(seconds=1))
    await queue(sessions, "saga-b", "disable", T0 + timedelta(seconds=2))

    assert await claimed(sessions, killed, T0 + timedelta(seconds=3)) == [
        "saga-a/disable",
        "saga-b/disable",
    ]
    assert await claimed(sessions, survivor, T0 + timedelta(seconds=3)) == []
    # The disable's replica was killed: its lease runs out, and the disable is the one taken
    # over by the other replica.
    wall.advance(120)
    later = T0 + timedelta(seconds=120)
    assert await claimed(sessions, survivor, later) == ["saga-a/disable", "saga-b/disable"]

    async with sessions() as session:
        job_id = (
            await session.execute(
                text("SELECT job_id FROM jobs WHERE idempotency_key = 'saga-a/disable'")
            )
        ).scalar_one()
        await finish_job(session, job_id, later)
        await session.commit()
    # The restore may run now; saga-b's disable is still the survivor's (taken again: renewed).
    assert await claimed(sessions, survivor, later + timedelta(seconds=1)) == [
        "saga-a/restore",
        "saga-b/disable",
    ]
    assert await claimed(sessions, killed, later + timedelta(seconds=1)) == []
