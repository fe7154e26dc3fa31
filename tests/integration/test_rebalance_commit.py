"""Offsets held back for a moment (the consumer commits at most every 100 ms) may belong to a
partition a rebalance has meanwhile given to another replica. Committing them must not stop
the consumer: the partitions still held keep their progress, the one taken away is the new
owner's (it starts from the last commit, and its inbox drops what it sees again)."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from certrotate_shared.transport.base import IncomingRecord
from certrotate_shared.transport.kafka import KafkaSubscription, ensure_topics


async def _poll_until(
    sub: KafkaSubscription, want: int, others: tuple[KafkaSubscription, ...] = ()
) -> dict[tuple[str, int], IncomingRecord]:
    """Poll `sub` (and keep `others` in the group) until `want` partitions gave a record."""
    last: dict[tuple[str, int], IncomingRecord] = {}
    async with asyncio.timeout(60):
        while len(last) < want:
            for other in others:
                await other.poll(0.05)
            for key, records in (await sub.poll(0.2)).items():
                last[key] = records[-1]
    return last


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in (0, 1)}
    finally:
        await reader.stop()


async def test_a_commit_after_a_rebalance_keeps_what_is_still_held_and_does_not_fail(
    kafka_bootstrap, topic_prefix
):
    topic, group = f"{topic_prefix}.rebalance", f"g-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    for partition in (0, 1):
        await producer.send_and_wait(topic, b"first", partition=partition)
    first = KafkaSubscription(kafka_bootstrap, group, [topic], client_id="first")
    second = KafkaSubscription(kafka_bootstrap, group, [topic], client_id="second")
    await first.start()
    try:
        handled = await _poll_until(first, 2)  # handled, offsets not committed yet
        await second.start()
        # The second replica joins: one of the two partitions becomes its own.
        await producer.send_and_wait(topic, b"second", partition=0)
        await producer.send_and_wait(topic, b"second", partition=1)
        await _poll_until(second, 1, others=(first,))
        kept = {tp.partition for tp in first._consumer.assignment()}
        assert len(kept) == 1

        await first.commit(handled)  # raised IllegalStateError before, stopping the consumer

        committed = await _committed(kafka_bootstrap, group, topic)
        (mine,) = kept
        assert committed[mine] == 1
        assert committed[1 - mine] is None  # the second replica's to commit, from where it began
    finally:
        await second.stop()
        await first.stop()
        await producer.stop()
