"""What a unit of work sends to the real PostgreSQL: every round trip is latency on each step of
every saga, so the statements a transaction costs are part of its contract."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared.db import make_engine, session_factory
from certrotate_shared.migrations import messaging_chain, migrate
from certrotate_shared.outbox_signal import OutboxSignal, notify_channel
from certrotate_shared.unit_of_work import UnitOfWork
from tests.support.factories import inspect_site

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(pg_url: str, pg_schemas: list[str]) -> AsyncIterator[tuple[AsyncEngine, str]]:
    schema = f"uow_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    await migrate(pg_url, schema, [messaging_chain()])
    # One pooled connection, so that the logger below sees every statement of the test.
    engine = make_engine(pg_url, schema, pool_size=1, max_overflow=0)
    yield engine, schema
    await engine.dispose()


async def _log_statements(engine: AsyncEngine, schema: str) -> list[str]:
    """The statements sent on the (only) pooled connection from now on. A first transaction
    before: asyncpg asks the server about the array types once per connection."""
    async with _uow(engine, schema) as uow:
        uow.emit(inspect_site("warm-up"), saga_id="warm-up")
        await uow.commit()
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM outbox"))
    sent: list[str] = []
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        driver.add_query_logger(lambda record: sent.append(" ".join(record.query.split())[:40]))
    return sent


async def _logged() -> None:
    """asyncpg hands the log records to the loggers on the next turn of the event loop."""
    await asyncio.sleep(0)


def _uow(engine: AsyncEngine, schema: str) -> UnitOfWork:
    return UnitOfWork(
        session_factory(engine),
        topic_prefix="t",
        signal=OutboxSignal(),
        notify_channel=notify_channel(schema),
    )


async def test_a_transaction_that_only_sends_is_one_statement(database: Any):
    """Messages sent with nothing else written: one statement, atomic on its own, without the
    BEGIN and COMMIT round trips; the rows are committed when it returns."""
    engine, schema = database
    sent = await _log_statements(engine, schema)
    saga = str(uuid.uuid4())
    async with _uow(engine, schema) as uow:
        first = uow.emit(inspect_site(saga), saga_id=saga)
        second = uow.emit(inspect_site(saga), saga_id=saga)
        await uow.commit()
    await _logged()

    assert len(sent) == 1 and sent[0].startswith("WITH sent AS"), sent
    async with engine.connect() as conn:
        ids = (await conn.execute(text("SELECT message_id FROM outbox ORDER BY id"))).scalars()
        assert list(ids) == [str(first.message_id), str(second.message_id)]


async def test_a_transaction_that_reads_before_sending_still_commits_as_one(database: Any):
    """With a statement before the messages, the transaction is BEGIN ... COMMIT as ever, and
    a rollback leaves no message behind."""
    engine, schema = database
    sent = await _log_statements(engine, schema)
    saga = str(uuid.uuid4())
    async with _uow(engine, schema) as uow:
        await uow.session.execute(text("SELECT 1"))
        uow.emit(inspect_site(saga), saga_id=saga)
        # Left without commit(): rolled back.
    async with _uow(engine, schema) as uow:
        await uow.session.execute(text("SELECT 1"))
        kept = uow.emit(inspect_site(saga), saga_id=saga)
        await uow.commit()
    await _logged()

    assert [s.split()[0] for s in sent if s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))] == [
        "BEGIN;",
        "ROLLBACK;",
        "BEGIN;",
        "COMMIT;",
    ], sent
    async with engine.connect() as conn:
        ids = (await conn.execute(text("SELECT message_id FROM outbox"))).scalars()
        assert list(ids) == [str(kept.message_id)]
