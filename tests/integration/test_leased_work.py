"""The one runner of long-running work (certrotate_shared.work) that every worker service uses:
a command accepted by a handler is performed once, by the performer its type names; when the
replica working on it dies (here: it loses its database, so it can neither renew nor hand its
work over), another replica takes the work over once the lease has run out and finishes it;
an unexpected error is retried a bounded number of times, then answered by give_up. Real
PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certrotate_shared.clock import ManualClock
from certrotate_shared.db import make_engine, session_factory
from certrotate_shared.envelope import Envelope
from certrotate_shared.leases import Lease, LeasedTable
from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from certrotate_shared.outbox_signal import OutboxSignal
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.work import Work, WorkContext
from certrotate_shared.work_runner import LeasedWork, WorkRetryPolicy

pytestmark = pytest.mark.integration

metadata = MetaData()
work = Table(
    "work",
    metadata,
    Column("key", String(50), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("owner", String(200)),
    Column("lease_until", DateTime(timezone=True)),
    Column("command", Text, nullable=False),
    Column("done_by", String(50)),
)
WORK = LeasedTable(work, "key", open=lambda: work.c.status == "open")
LEASE_S = 0.5  # real seconds: the take-over below waits this long once


class Table_:
    async def due(
        self, session: AsyncSession, lease: Lease, *, now: datetime, limit: int
    ) -> list[Work]:
        rows = await session.execute(
            select(work).where(WORK.open(), lease.available()).limit(limit)
        )
        return [Work(r.key, Envelope.model_validate_json(r.command)) for r in rows]

    def taken(self, now: datetime) -> dict[str, Any]:
        return {}

    def again(self, at: datetime) -> dict[str, Any]:
        return {}

    def kept(self) -> dict[str, Any]:
        return {}


class Replica:
    """What the runner needs of a service runtime: transactions, which can be cut off."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.clock = ManualClock()
        self.cut_off = False

    def uow(self) -> UnitOfWork:
        if self.cut_off:
            raise ConnectionRefusedError("the database is unreachable from this replica")
        return UnitOfWork(
            self.sessions, topic_prefix="t", signal=OutboxSignal(), notify_channel=None
        )


@pytest.fixture
async def sessions(
    pg_url: str, pg_schemas: list[str]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    schema = f"work_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    engine = make_engine(pg_url, schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
        envelope = Envelope.wrap(
            CancelPropagationWatch(idempotency_key="k", watch_id="w"), saga_id="s"
        )
        await conn.execute(
            work.insert().values(key="w", status="open", command=envelope.model_dump_json())
        )
    yield session_factory(engine)
    await engine.dispose()


def runner(name: str, perform: Any, give_up: Any = None, attempts: int = 3) -> LeasedWork:
    async def no_give_up(ctx: WorkContext, exc: Exception) -> None:
        raise AssertionError("not expected to give up")

    return LeasedWork(
        service="test",
        table=Table_(),
        lease=Lease(WORK, owner=name, seconds=LEASE_S),
        perform={CancelPropagationWatch: perform},
        give_up=give_up or no_give_up,
        clock=ManualClock(),
        poll_s=0.05,
        retries=WorkRetryPolicy(max_attempts=attempts, base_s=0.01, max_s=0.05),
    )


async def finish(ctx: WorkContext, by: str) -> None:
    async with ctx.uow() as uow:
        await uow.session.execute(
            update(work).where(work.c.key == ctx.work.key).values(status="done", done_by=by)
        )
        await uow.commit()


async def done_by(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    for _ in range(200):
        async with sessions() as session:
            row = (await session.execute(select(work.c.status, work.c.done_by))).one()
        if row.status == "done":
            return str(row.done_by)
        await asyncio.sleep(0.05)
    return None


async def test_a_dead_replicas_work_is_taken_over_and_finished_by_another(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    started = asyncio.Event()
    first_stopped = asyncio.Event()

    async def stuck(command: CancelPropagationWatch, ctx: WorkContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            first_stopped.set()

    async def finishing(command: CancelPropagationWatch, ctx: WorkContext) -> None:
        assert command.watch_id == "w"
        await finish(ctx, "survivor")

    doomed, survivor = Replica(sessions), Replica(sessions)
    first = asyncio.create_task(runner("doomed", stuck).run(doomed))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 30)
    second = asyncio.create_task(runner("survivor", finishing).run(survivor))  # type: ignore[arg-type]
    await asyncio.sleep(LEASE_S / 2)
    async with sessions() as session:
        assert (await session.execute(select(work.c.owner))).scalar() == "doomed"

    doomed.cut_off = True  # it can neither renew nor hand over: as if killed

    assert await done_by(sessions) == "survivor"
    # The cut-off replica stopped its own pass once its hold had run out.
    await asyncio.wait_for(first_stopped.wait(), 30)
    for task in (first, second):
        task.cancel()
    await asyncio.gather(first, second, return_exceptions=True)


async def test_an_unexpected_error_is_retried_a_bounded_number_of_times_then_answered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tries: list[int] = []
    answered: list[str] = []

    async def failing(command: CancelPropagationWatch, ctx: WorkContext) -> None:
        tries.append(1)
        raise KeyError("computerName")

    async def give_up(ctx: WorkContext, exc: Exception) -> None:
        answered.append(repr(exc))
        await finish(ctx, "give_up")

    replica = Replica(sessions)
    task = asyncio.create_task(runner("one", failing, give_up, attempts=3).run(replica))  # type: ignore[arg-type]

    assert await done_by(sessions) == "give_up"
    assert len(tries) == 3
    assert answered == ["KeyError('computerName')"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
