"""A transaction's saga saves in one statement, on the real PostgreSQL (adapters/saga_saves.py):
the same version check as one UPDATE per saga, and nothing in the transaction reads a stale
saga while the saves wait."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared.db import make_engine, session_factory
from certrotate_shared.migrations import messaging_chain, migrate
from certrotate_shared.outbox_signal import OutboxSignal
from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters import saga_saves
from orchestrator.adapters.orm import sagas
from orchestrator.adapters.repository import ConcurrentUpdateError, SagaRepository
from orchestrator.domain.inputs import PauseRequested
from orchestrator.migrations import SCRIPT_LOCATION, VERSION_TABLE
from orchestrator.service_layer.transitions import advance
from tests.unit.orchestrator.saga_driver import SagaDriver

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(pg_url: str, pg_schemas: list[str]) -> AsyncIterator[AsyncEngine]:
    schema = f"saves_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    await migrate(pg_url, schema, [messaging_chain(), (SCRIPT_LOCATION, VERSION_TABLE)])
    engine = make_engine(pg_url, schema, pool_size=2)
    yield engine
    await engine.dispose()


def _uow(engine: AsyncEngine) -> UnitOfWork:
    return UnitOfWork(
        session_factory(engine), topic_prefix="t", signal=OutboxSignal(), notify_channel=None
    )


async def _sagas(engine: AsyncEngine, count: int) -> list[str]:
    ids = []
    async with _uow(engine) as uow:
        for _ in range(count):
            state = SagaDriver().state
            await SagaRepository(uow.session).add(state)
            ids.append(state.saga_id)
        await uow.commit()
    return ids


async def _stored(engine: AsyncEngine) -> dict[str, tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(sagas.c.saga_id, sagas.c.status, sagas.c.version))
        return {r.saga_id: (r.status, r.version) for r in rows}


async def test_a_batch_of_transitions_saves_its_sagas_in_one_statement(engine):
    ids = await _sagas(engine, 5)
    sent: list[str] = []
    async with _uow(engine) as uow:
        driver: Any = None
        for n, saga_id in enumerate(ids):
            decision = await advance(
                uow, saga_id, PauseRequested(by="ops", reason="freeze"), _now()
            )
            assert decision is not None
            if n == 0:
                driver = (
                    await (await uow.session.connection()).get_raw_connection()
                ).driver_connection
                driver.add_query_logger(lambda r: sent.append(" ".join(r.query.split())))
        await uow.commit()
    await asyncio.sleep(0)  # asyncpg hands the log records over on the next turn
    assert sum(s.startswith("UPDATE sagas") for s in sent) == 1, sent
    assert await _stored(engine) == {saga_id: ("paused", 2) for saga_id in ids}


async def test_a_saga_saved_earlier_in_the_transaction_reads_back_as_saved(engine):
    """Its next transition in the same batch, and any statement through the session, see the
    queued save, not the row as it was."""
    (saga_id,) = await _sagas(engine, 1)
    async with _uow(engine) as uow:
        await advance(uow, saga_id, PauseRequested(by="ops", reason="freeze"), _now())
        loaded = await SagaRepository(uow.session).get(saga_id)
        assert loaded is not None and loaded[0].status == "paused" and loaded[1] == 2
        row = (
            await uow.session.execute(
                select(sagas.c.status, sagas.c.version).where(sagas.c.saga_id == saga_id)
            )
        ).one()
        assert tuple(row) == ("paused", 2)
        await uow.commit()
    assert await _stored(engine) == {saga_id: ("paused", 2)}


async def test_a_saga_another_transaction_changed_fails_the_commit_and_nothing_is_saved(engine):
    first, second = await _sagas(engine, 2)
    async with _uow(engine) as uow:
        await advance(uow, first, PauseRequested(by="ops", reason="freeze"), _now())
        loaded = await SagaRepository(uow.session).get(second)
        assert loaded is not None
        # Meanwhile another replica moved the second saga on.
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE sagas SET version = 7 WHERE saga_id = :s"), {"s": second}
            )
        with pytest.raises(ConcurrentUpdateError, match=second):
            if await saga_saves.save_later(uow, loaded[0], loaded[1]):
                await uow.commit()
    stored = await _stored(engine)
    assert stored[first] == ("running", 1)
    assert stored[second][1] == 7


async def test_on_sqlite_a_save_is_written_at_once(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/o.db", "orchestrator")
    try:
        await migrate(
            f"sqlite+aiosqlite:///{tmp_path}/o.db",
            "orchestrator",
            [messaging_chain(), (SCRIPT_LOCATION, VERSION_TABLE)],
        )
        (saga_id,) = await _sagas(engine, 1)
        async with _uow(engine) as uow:
            loaded = await SagaRepository(uow.session).get(saga_id)
            assert loaded is not None
            assert not await saga_saves.save_later(uow, loaded[0], loaded[1])
    finally:
        await engine.dispose()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
