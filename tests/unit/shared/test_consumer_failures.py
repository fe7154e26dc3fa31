"""How the consumer treats a handler that fails: waited out, answered with a typed failure, or
parked in the DLQ and reported. On the embedded transport (SQLite + the durable local log)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Envelope, Event, Message
from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.messages.replication import InspectSite, SiteInspected
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.topics import commands_topic, dlq_topic, events_topic
from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord
from certrotate_shared.transport.local import LocalSubscription, LocalTransport
from tests.support.echo_worker import EchoSettings
from tests.support.factories import site_target

pytestmark = pytest.mark.unit

COMMANDS = commands_topic("replication")


@dataclass
class Worker:
    runtime: ServiceRuntime
    transport: LocalTransport
    calls: list[str] = field(default_factory=list)

    async def send(self, *envelopes: Envelope, key: str) -> None:
        await self.transport.publish(
            [OutgoingRecord(COMMANDS, key, e.to_bytes()) for e in envelopes]
        )

    async def read(self, topic: str, count: int, group: str | None = None) -> list[IncomingRecord]:
        sub = self.transport.subscribe(group or f"reader-{uuid.uuid4()}", [topic])
        await sub.start()
        seen: list[IncomingRecord] = []

        async def enough() -> None:
            while len(seen) < count:
                for records in (await sub.poll(0.5)).values():
                    seen.extend(records)

        await asyncio.wait_for(enough(), 30)
        return seen

    async def everything_on(self, topic: str) -> list[IncomingRecord]:
        sub = self.transport.subscribe(f"reader-{uuid.uuid4()}", [topic])
        await sub.start()
        return [r for records in (await sub.poll(0.05)).values() for r in records]


def flaky_then_fine(failures: int, error: Callable[[], BaseException]):
    """A handler for InspectSite that fails `failures` times per site, then answers."""
    counts: dict[str, int] = {}

    async def handle(message: Message, ctx: Context) -> Event | None:
        assert isinstance(message, InspectSite)
        counts[message.site.site] = counts.get(message.site.site, 0) + 1
        if message.site.site != "steady" and counts[message.site.site] <= failures:
            raise error()
        return SiteInspected(site=message.site.site, version="14.3", replicated=False, partners=[])

    return handle, counts


@pytest.fixture
async def make_worker(tmp_path, master_key) -> AsyncIterator[Callable[..., Any]]:
    started: list[ServiceRuntime] = []
    transports: list[LocalTransport] = []

    async def make(handlers: dict[type[Message], Any], transport: LocalTransport | None = None):
        transport = transport or LocalTransport(str(tmp_path / "log.db"))
        transports.append(transport)
        settings = EchoSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/worker.db",
            transport="local",
            master_key=master_key,
            max_delivery_attempts=3,
            retry_base_delay_s=0.01,
            transient_retry_max_delay_s=0.05,
            consumer_restart_base_s=0.01,
        )
        spec = ServiceSpec(
            name="replication",
            handlers=handlers,
            topics=lambda prefix: [commands_topic("replication", prefix)],
            api=lambda runtime: FastAPI(),
        )
        runtime = ServiceRuntime(settings, spec, transport=transport)
        await runtime.start(serve_http=False)
        started.append(runtime)
        return Worker(runtime, transport)

    yield make
    for runtime in started:
        await runtime.stop()
    for transport in transports:
        await transport.stop()


def _command(site: str, saga: str, attempt: int = 1) -> Envelope:
    return Envelope.wrap(
        InspectSite(idempotency_key=f"{saga}:inspect:{attempt}", site=site_target(site)),
        saga_id=saga,
    )


async def test_a_transient_error_is_waited_out_and_the_partition_waits_with_it(make_worker):
    handle, counts = flaky_then_fine(4, lambda: ConnectionRefusedError(111, "refused"))
    worker = await make_worker({InspectSite: handle})
    saga = str(uuid.uuid4())
    first, second = _command("north", saga), _command("steady", saga, attempt=2)
    await worker.send(first, second, key=saga)

    replies = await worker.read(events_topic(), 2)

    # More failures than max_delivery_attempts, yet no dead letter and no failure: it waited.
    assert [Envelope.from_bytes(r.value).causation_id for r in replies] == [
        str(first.message_id),
        str(second.message_id),
    ]
    assert {Envelope.from_bytes(r.value).type for r in replies} == {"SiteInspected"}
    assert counts == {"north": 5, "steady": 1}
    assert await worker.everything_on(dlq_topic()) == []
    assert worker.runtime.problems() == []


async def test_an_unknown_error_ends_in_the_commands_typed_failure_after_bounded_attempts(
    make_worker,
):
    handle, counts = flaky_then_fine(10_000, lambda: ValueError("no group named 'My Company'"))
    worker = await make_worker({InspectSite: handle})
    saga = str(uuid.uuid4())
    failing, after = _command("north", saga), _command("steady", saga, attempt=2)
    await worker.send(failing, after, key=saga)

    replies = [Envelope.from_bytes(r.value) for r in await worker.read(events_topic(), 2)]

    assert [(r.type, r.causation_id) for r in replies] == [
        ("SiteInspectionFailed", str(failing.message_id)),
        ("SiteInspected", str(after.message_id)),
    ]
    assert replies[0].saga_id == saga
    assert replies[0].payload["retryable"] is False
    assert replies[0].payload["reason"] == "ValueError: no group named 'My Company'"
    assert counts["north"] == 3  # max_delivery_attempts, not forever
    assert await worker.everything_on(dlq_topic()) == []

    # The same step re-sent (new message id, same key) gets the recorded failure at once.
    again = Envelope.wrap(failing.message(), saga_id=saga)
    await worker.send(again, key=saga)
    replies = [Envelope.from_bytes(r.value) for r in await worker.read(events_topic(), 3)]
    assert (replies[2].type, replies[2].causation_id) == (
        "SiteInspectionFailed",
        str(again.message_id),
    )
    assert counts["north"] == 3


async def test_a_message_without_a_typed_failure_is_parked_and_reported(make_worker):
    async def cancel(message: Message, ctx: Context) -> Event | None:
        raise RuntimeError("the watch table is corrupt")

    worker = await make_worker({CancelPropagationWatch: cancel})
    saga = str(uuid.uuid4())
    parked = Envelope.wrap(
        CancelPropagationWatch(idempotency_key=f"{saga}:cancel:1", watch_id="w-1"),
        saga_id=saga,
    )
    await worker.send(parked, key=saga)

    (dead,) = await worker.read(dlq_topic(), 1)
    (report,) = await worker.read(events_topic(), 1)

    assert dead.value == parked.to_bytes()
    envelope = Envelope.from_bytes(report.value)
    event = envelope.message()
    assert isinstance(event, MessageDeadLettered)
    assert envelope.saga_id == saga
    assert envelope.causation_id == str(parked.message_id)
    assert event.envelope == parked.model_dump(mode="json")
    assert (event.message_id, event.message_type, event.idempotency_key) == (
        str(parked.message_id),
        "CancelPropagationWatch",
        f"{saga}:cancel:1",
    )
    assert (event.service, event.topic, event.partition, event.offset, event.attempts) == (
        "replication",
        dead_header(dead, "topic"),
        int(dead_header(dead, "partition")),
        int(dead_header(dead, "offset")),
        3,
    )
    assert event.error == "RuntimeError: the watch table is corrupt"


async def test_an_undecodable_record_is_parked_and_reported_to_the_saga_of_its_key(make_worker):
    handle, _ = flaky_then_fine(0, lambda: ValueError())
    worker = await make_worker({InspectSite: handle})
    saga = str(uuid.uuid4())
    await worker.transport.publish([OutgoingRecord(COMMANDS, saga, b"{not json")])
    good = _command("steady", saga)
    await worker.send(good, key=saga)

    (dead,) = await worker.read(dlq_topic(), 1)
    events = [Envelope.from_bytes(r.value) for r in await worker.read(events_topic(), 2)]

    assert dead.value == b"{not json"
    report = next(e for e in events if e.type == "MessageDeadLettered")
    assert report.saga_id == saga
    assert report.payload["attempts"] == 1
    assert "undecodable" in report.payload["error"]
    assert [e.causation_id for e in events if e.type == "SiteInspected"] == [str(good.message_id)]


def dead_header(record: IncomingRecord, name: str) -> str:
    return dict(record.headers)[name].decode()


class _CommitFailsOnce(LocalSubscription):
    failures = 1
    restarted = asyncio.Event()
    release = asyncio.Event()
    starts = 0

    async def start(self) -> None:
        type(self).starts += 1
        if type(self).starts > 1:
            type(self).restarted.set()
            await type(self).release.wait()
        await super().start()

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        if type(self).failures:
            type(self).failures -= 1
            raise RuntimeError("CommitFailedError: the group rebalanced")
        await super().commit(last)


class _FlakyCommits(LocalTransport):
    def subscribe(self, group: str, topics: list[str]) -> LocalSubscription:
        return _CommitFailsOnce(self, group, topics)


async def test_a_failed_offset_commit_restarts_the_consumer_and_readiness_fails_meanwhile(
    make_worker, tmp_path
):
    _CommitFailsOnce.restarted, _CommitFailsOnce.release = asyncio.Event(), asyncio.Event()
    handle, counts = flaky_then_fine(0, lambda: ValueError())
    worker = await make_worker(
        {InspectSite: handle}, transport=_FlakyCommits(str(tmp_path / "log.db"))
    )
    saga = str(uuid.uuid4())
    first = _command("north", saga)
    await worker.send(first, key=saga)

    await asyncio.wait_for(_CommitFailsOnce.restarted.wait(), 30)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=worker.runtime.app), base_url="http://worker"
    ) as client:
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert "consumer" in down.json()["detail"]
        _CommitFailsOnce.release.set()
        second = _command("north", saga, attempt=2)
        await worker.send(second, key=saga)
        replies = [Envelope.from_bytes(r.value) for r in await worker.read(events_topic(), 2)]
        up = await client.get("/readyz")

    assert [r.causation_id for r in replies] == [str(first.message_id), str(second.message_id)]
    assert counts == {"north": 2}  # the redelivered first command was not handled twice
    assert up.status_code == 200
