"""When the consumer tells the broker how far it got: at most every `commit_interval` while
records keep coming (a commit per message was a third of its requests), soon after the last
one when they stop, and before a clean stop returns."""

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


class Subscription:
    """One partition, fed by the test; records every commit."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[IncomingRecord] = asyncio.Queue()
        self.commits: list[int] = []
        self.offset = 0

    def feed(self) -> None:
        envelope = Envelope.wrap(
            SiteInspected(site="a", version="14.3", replicated=False, partners=[]),
            saga_id=str(uuid.uuid4()),
        )
        self.queue.put_nowait(IncomingRecord(TOPIC, 0, self.offset, "k", envelope.to_bytes()))
        self.offset += 1

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, timeout: float) -> dict[tuple[str, int], list[IncomingRecord]]:
        try:
            record = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return {}
        return {(TOPIC, 0): [record]}

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        self.commits.append(last[(TOPIC, 0)].offset + 1)

    async def rewind(self, *args: Any) -> None: ...

    def pause(self, *args: Any) -> None: ...

    def resume(self, *args: Any) -> None: ...

    async def lag(self) -> dict[tuple[str, int], int]:
        return {}


class UnitOfWork:
    """Every delivery is a first one; nothing is written."""

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None: ...

    async def first_deliveries(self, envelopes: list[Envelope], keys: list[str]) -> list[bool]:
        return [True] * len(envelopes)

    async def commit(self) -> None: ...


def consumer(sub: Subscription, handled: list[str], interval: float) -> MessageConsumer:
    async def handle(message: Message, ctx: Context) -> Event | None:
        handled.append(str(ctx.envelope.message_id))
        return None

    return MessageConsumer(
        subscription=sub,
        uow_factory=UnitOfWork,  # type: ignore[arg-type]
        handlers={SiteInspected: handle},
        transport=None,  # type: ignore[arg-type]
        dlq_topic="t.dlq",
        service="test",
        commit_interval=interval,
    )


async def test_a_stream_of_messages_is_committed_in_a_few_commits_not_one_each():
    sub, handled = Subscription(), list[str]()
    running = consumer(sub, handled, interval=3600.0)
    task = asyncio.create_task(running.run())
    for _ in range(20):
        sub.feed()
        while len(handled) < sub.offset:
            await asyncio.sleep(0.001)
    assert sub.commits == []  # held back for the interval
    running.stop()
    sub.feed()  # wakes the poll; a clean stop commits what it handled
    await asyncio.wait_for(task, 10)
    assert sub.commits[-1] == len(handled)


async def test_the_last_records_are_committed_soon_after_the_stream_stops():
    sub, handled = Subscription(), list[str]()
    running = consumer(sub, handled, interval=0.05)
    task = asyncio.create_task(running.run())
    for _ in range(5):
        sub.feed()

    async def all_committed() -> None:
        while not sub.commits or sub.commits[-1] < 5:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(all_committed(), 10)  # no new record needed to get there
    assert len(handled) == 5
    running.stop()
    await asyncio.wait_for(task, 10)
