"""Batching consumers handle everything a poll returned, from every partition, in one
transaction (a transaction per partition cost a BEGIN, an inbox statement, an outbox statement
and a COMMIT each: at 64 sagas in flight, most of a worker's CPU). One bad record still holds
back only its own partition: the others are then handled, and committed, on their own."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from certrotate_shared.consumer import Context, MessageConsumer
from certrotate_shared.envelope import Envelope, Event, Message
from certrotate_shared.messages.replication import SiteInspected
from certrotate_shared.transport.base import IncomingRecord

pytestmark = pytest.mark.unit

TOPIC = "t.events"


def record(partition: int, offset: int, site: str) -> IncomingRecord:
    envelope = Envelope.wrap(
        SiteInspected(site=site, version="14.3", replicated=False, partners=[]),
        saga_id=str(uuid.uuid4()),
    )
    return IncomingRecord(TOPIC, partition, offset, envelope.saga_id, envelope.to_bytes())


class Subscription:
    """Returns the records it was given in one poll, grouped by partition; records commits,
    rewinds and pauses."""

    def __init__(self, records: list[IncomingRecord]) -> None:
        self.pending: dict[tuple[str, int], list[IncomingRecord]] = {}
        for r in records:
            self.pending.setdefault((r.topic, r.partition), []).append(r)
        self.committed: dict[int, int] = {}
        self.paused: list[int] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, timeout: float) -> dict[tuple[str, int], list[IncomingRecord]]:
        batches, self.pending = self.pending, {}
        if not batches:
            await asyncio.sleep(min(timeout, 0.01))
        return batches

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        for (_, partition), r in last.items():
            self.committed[partition] = r.offset + 1

    async def rewind(self, topic: str, partition: int, offset: int) -> None: ...

    def pause(self, topic: str, partition: int) -> None:
        self.paused.append(partition)

    def resume(self, *args: Any) -> None: ...

    async def lag(self) -> dict[tuple[str, int], int]:
        return {}


class Database:
    """What committed transactions kept: the sites handled, and each transaction's batch."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.transactions: list[list[str]] = []


class UnitOfWork:
    """Every delivery is a first one; what a handler did is kept only if it commits."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.batch: list[Envelope] = []
        self.done: list[str] = []

    async def __aenter__(self) -> UnitOfWork:
        self.batch, self.done = [], []
        return self

    async def __aexit__(self, *exc: object) -> None: ...

    async def first_deliveries(self, envelopes: list[Envelope], keys: list[str]) -> list[bool]:
        return [True] * len(envelopes)

    async def commit(self) -> None:
        self.db.handled += self.done
        self.db.transactions.append(self.done)


async def run_until_idle(sub: Subscription, db: Database, bad_site: str | None) -> MessageConsumer:
    async def handle(message: Message, ctx: Context) -> Event | None:
        assert isinstance(message, SiteInspected)
        if message.site == bad_site:
            raise ConnectionError("database unavailable")  # transient: the record waits
        uow: Any = ctx.uow
        uow.done.append(message.site)
        return None

    consumer = MessageConsumer(
        subscription=sub,
        uow_factory=lambda: UnitOfWork(db),  # type: ignore[arg-type,return-value]
        handlers={SiteInspected: handle},
        transport=None,  # type: ignore[arg-type]
        dlq_topic="t.dlq",
        service="test",
        batch_transactions=True,
        commit_interval=0.0,
    )
    task = asyncio.create_task(consumer.run())
    for _ in range(500):
        if sub.committed and not sub.pending:
            break
        await asyncio.sleep(0.01)
    consumer.stop()
    await asyncio.wait_for(task, 10)
    return consumer


async def test_a_poll_from_three_partitions_is_one_transaction_in_partition_order():
    records = [record(p, o, f"p{p}-{o}") for p in (0, 1, 2) for o in (0, 1)]
    sub, db = Subscription(records), Database()
    await run_until_idle(sub, db, bad_site=None)
    assert db.transactions == [["p0-0", "p0-1", "p1-0", "p1-1", "p2-0", "p2-1"]]
    assert sub.committed == {0: 2, 1: 2, 2: 2}


async def test_a_bad_record_holds_back_its_partition_only():
    records = [record(p, o, f"p{p}-{o}") for p in (0, 1) for o in (0, 1)]
    sub, db = Subscription(records), Database()
    await run_until_idle(sub, db, bad_site="p0-1")
    # The shared transaction rolled back; partition 1 went on, partition 0 kept what came
    # before its bad record, and waits at it.
    assert sorted(db.handled) == ["p0-0", "p1-0", "p1-1"]
    assert sub.committed == {0: 1, 1: 2}
    assert sub.paused == [0]
