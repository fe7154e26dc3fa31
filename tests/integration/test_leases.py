"""The one lease every worker service holds its long-running work with (certificate jobs,
replication operations, propagation watches): two replicas never both hold a row, a killed
replica's rows are taken over once its lease runs out, and a stalled replica learns it lost
them. Real PostgreSQL; wall time is a hand-moved clock, so nothing waits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certrotate_shared.clock import ManualClock
from certrotate_shared.db import make_engine, session_factory
from certrotate_shared.leases import Lease, LeasedTable

pytestmark = pytest.mark.integration

metadata = MetaData()
work = Table(
    "work",
    metadata,
    Column("key", String(50), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("owner", String(200)),
    Column("lease_until", DateTime(timezone=True)),
    Column("note", String(50)),
)
WORK = LeasedTable(work, "key", open=lambda: work.c.status == "open")


@pytest.fixture
async def sessions(
    pg_url: str, pg_schemas: list[str]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    schema = f"leases_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    engine = make_engine(pg_url, schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            work.insert(),
            [{"key": k, "status": "open"} for k in ("a", "b")] + [{"key": "c", "status": "done"}],
        )
    yield session_factory(engine)
    await engine.dispose()


async def take(sessions: async_sessionmaker[AsyncSession], lease: Lease, key: str) -> bool:
    async with sessions() as session:
        won = await lease.take(session, key)
        await session.commit()
    return won


async def test_two_replicas_racing_for_the_same_rows_never_both_win(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    wall = ManualClock()
    replicas = [Lease(WORK, owner=f"replica-{n}", seconds=30, clock=wall) for n in range(4)]

    won = await asyncio.gather(*(take(sessions, r, "a") for r in replicas))

    assert sum(won) == 1
    assert not await take(sessions, replicas[0], "c"), "closed work is never taken"


async def test_a_killed_replicas_work_is_taken_over_once_its_lease_runs_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    wall = ManualClock()
    killed = Lease(WORK, owner="killed", seconds=30, clock=wall)
    survivor = Lease(WORK, owner="survivor", seconds=30, clock=wall)
    async with sessions() as session:
        assert sorted(await killed.take_all(session, note="killed's")) == ["a", "b"]
        await session.commit()

    wall.advance(29)
    async with sessions() as session:
        assert await survivor.take_all(session) == []
        await session.commit()
    wall.advance(2)
    async with sessions() as session:
        assert sorted(await survivor.take_all(session, note="survivor's")) == ["a", "b"]
        await session.commit()
        notes = (await session.execute(select(work.c.note).where(work.c.key == "a"))).scalar()

    assert notes == "survivor's"
    # The killed replica comes back from a long pause: its renewal says the work is gone.
    async with sessions() as session:
        assert await killed.renew(session, ["a", "b"]) == set()
        await session.commit()


async def test_renewing_keeps_the_work_and_releasing_hands_it_over_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    wall = ManualClock()
    holder = Lease(WORK, owner="holder", seconds=30, clock=wall)
    other = Lease(WORK, owner="other", seconds=30, clock=wall)
    assert await take(sessions, holder, "a")

    for _ in range(5):  # two and a half minutes of renewals every 30 s
        wall.advance(20)
        async with sessions() as session:
            assert await holder.renew(session, ["a"]) == {"a"}
            await session.commit()
        assert not await take(sessions, other, "a")

    async with sessions() as session:
        assert await holder.release(session, "a")
        await session.commit()
    assert await take(sessions, other, "a")


async def test_work_that_closes_is_no_longer_held(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    wall = ManualClock()
    holder = Lease(WORK, owner="holder", seconds=30, clock=wall)
    assert await take(sessions, holder, "a")
    async with sessions() as session:
        await session.execute(update(work).where(holder.held("a")).values(status="done"))
        await session.commit()
        assert await holder.renew(session, ["a"]) == set()
        assert await holder.holding(session) == []
