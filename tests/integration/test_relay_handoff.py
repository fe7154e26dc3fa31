"""The relay publishes what its own process committed without reading it back (the hand-off),
on the real PostgreSQL and Kafka: fewer round trips on every step, the same guarantees."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import text

from certrotate_shared.envelope import Envelope
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.kafka import KafkaSubscription
from tests.support.factories import inspect_site
from tests.support.probe import Probe

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(pg_url, kafka_bootstrap, topic_prefix, master_key, pg_schemas) -> dict[str, Any]:
    schema = f"handoff_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    return {
        "database_url": pg_url,
        "database_schema": schema,
        "transport": "kafka",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "master_key": master_key,
    }


async def _read(reader: KafkaSubscription, count: int) -> list[Envelope]:
    got: list[Envelope] = []
    while len(got) < count:
        for records in (await reader.poll(5.0)).values():
            got += [Envelope.from_bytes(r.value) for r in records]
    return got


async def _reader(settings: dict[str, Any]) -> KafkaSubscription:
    topic = commands_topic("replication", settings["topic_prefix"])
    reader = KafkaSubscription(
        settings["kafka_bootstrap"], f"reader-{uuid.uuid4().hex[:6]}", [topic], client_id="t"
    )
    await reader.start()
    return reader


async def test_what_this_process_commits_goes_out_without_a_read_of_the_outbox(settings):
    reader = await _reader(settings)
    async with Probe(**settings) as probe:
        relay = probe.runtime.relay
        await probe.send(inspect_site(), saga_id="warm-up")
        await _read(reader, 1)
        while relay.published < 1:  # its DELETE and count come after the broker has it
            await asyncio.sleep(0.01)
        before = relay.handed_over, relay.published
        sent = []
        for _ in range(5):
            saga = str(uuid.uuid4())
            sent += await probe.send(inspect_site(saga), saga_id=saga)
        got = await _read(reader, 5)
        while relay.published < before[1] + 5:
            await asyncio.sleep(0.01)
    await reader.stop()
    assert {e.message_id for e in got} == {e.message_id for e in sent}
    # Each went out from its hand-off (a row a read had published would not count here).
    assert relay.handed_over - before[0] == 5


async def test_sagas_keep_their_order_when_many_transactions_commit_at_once(settings):
    """Forty sagas each send twenty steps, one transaction a step, all at once: every saga's
    steps reach the broker in the order they were committed (a dependent commit never
    overtakes the one it follows), and none is lost."""
    reader = await _reader(settings)
    sent: dict[str, list[uuid.UUID]] = defaultdict(list)
    async with Probe(**settings, database_pool_size=8) as probe:

        async def saga() -> None:
            saga_id = str(uuid.uuid4())
            for step in range(20):
                (envelope,) = await probe.send(inspect_site(saga_id, step), saga_id=saga_id)
                sent[saga_id].append(envelope.message_id)

        await asyncio.gather(*(saga() for _ in range(40)))
        got = await _read(reader, 800)
    await reader.stop()
    received: dict[str, list[uuid.UUID]] = defaultdict(list)
    for envelope in got:
        if envelope.message_id not in received[envelope.saga_id]:  # a copy would be dropped
            received[envelope.saga_id].append(envelope.message_id)
    assert received == sent


async def test_a_commit_that_fails_is_not_published_and_holds_nothing_back(settings):
    """The COMMIT itself fails (a deferred constraint): its message must never go out, the next
    transaction's must, and the relay checks the table rather than trust the hand-off."""
    reader = await _reader(settings)
    async with Probe(**settings) as probe:
        async with probe.runtime.engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE once (n INT UNIQUE DEFERRABLE INITIALLY DEFERRED)")
            )
        doomed = str(uuid.uuid4())
        async with probe.runtime.uow() as uow:
            await uow.session.execute(text("INSERT INTO once VALUES (1), (1)"))
            uow.emit(inspect_site(doomed), saga_id=doomed)
            with pytest.raises(Exception, match="once"):
                await uow.commit()
        # The same saga, so the same partition: the doomed message would have come first.
        (envelope,) = await probe.send(inspect_site(doomed, 2), saga_id=doomed)
        (got,) = await _read(reader, 1)
    await reader.stop()
    assert got.message_id == envelope.message_id


async def test_a_replica_without_the_drain_lock_has_its_messages_published_by_the_other(
    settings,
):
    reader = await _reader(settings)
    async with Probe(**settings) as first, Probe(**settings) as second:
        sent = []
        for probe in (first, second, first, second):
            saga = str(uuid.uuid4())
            sent += await probe.send(inspect_site(saga), saga_id=saga)
        got = await _read(reader, 4)
    await reader.stop()
    assert {e.message_id for e in got} == {e.message_id for e in sent}


async def test_the_replica_that_drains_wakes_no_one_with_its_commits(settings):
    """NOTIFY serializes every notifying commit on the server (a database-wide lock held
    through the WAL flush): the replica whose relay drains has no one to wake. The other
    replica's commits still wake it (the test above)."""
    import asyncpg

    from certrotate_shared.db import asyncpg_dsn
    from certrotate_shared.outbox_signal import notify_channel

    reader = await _reader(settings)
    heard: list[str] = []
    listener = await asyncpg.connect(asyncpg_dsn(settings["database_url"]))
    await listener.add_listener(
        notify_channel(settings["database_schema"]), lambda *args: heard.append(args[-1])
    )
    try:
        async with Probe(**settings) as probe:
            while not probe.runtime.signal.draining:
                await asyncio.sleep(0.01)
            for _ in range(3):
                saga = str(uuid.uuid4())
                await probe.send(inspect_site(saga), saga_id=saga)
            await _read(reader, 3)
            # A NOTIFY is delivered at its commit, before the relay could publish the message.
            await listener.execute("SELECT 1")
    finally:
        await listener.close()
        await reader.stop()
    assert heard == []
