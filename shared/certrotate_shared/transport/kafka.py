"""The Kafka transport (aiokafka): idempotent producer, manual offset commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord

log = logging.getLogger(__name__)


class KafkaTransport:
    def __init__(self, bootstrap: str, *, client_id: str = "certrotate") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            request_timeout_ms=15000,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        assert self._producer is not None, "transport not started"
        # Send all, then wait for all: the idempotent producer keeps per-partition order.
        futures = [
            await self._producer.send(r.topic, r.value, key=r.key.encode(), headers=list(r.headers))
            for r in records
        ]
        await asyncio.gather(*futures)

    def subscribe(self, group: str, topics: list[str]) -> KafkaSubscription:
        return KafkaSubscription(self.bootstrap, group, topics, client_id=self.client_id)


class KafkaSubscription:
    def __init__(self, bootstrap: str, group: str, topics: list[str], *, client_id: str) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A broker answers a fetch as soon as one byte is there; idle fetches wait 100 ms.
            fetch_max_wait_ms=100,
            max_poll_records=500,
            # Host operations (install, restart) can take minutes inside one handler.
            max_poll_interval_ms=900_000,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout: float) -> dict[tuple[str, int], list[IncomingRecord]]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        return {
            (tp.topic, tp.partition): [_incoming(r) for r in records]
            for tp, records in batches.items()
            if records
        }

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        if last:
            await self._consumer.commit(
                {
                    TopicPartition(topic, partition): OffsetAndMetadata(record.offset + 1, "")
                    for (topic, partition), record in last.items()
                }
            )

    async def rewind(self, topic: str, partition: int, offset: int) -> None:
        tp = TopicPartition(topic, partition)
        # After a rebalance the partition may be someone else's: they start from the commit.
        if tp in self._consumer.assignment():
            self._consumer.seek(tp, offset)

    def pause(self, topic: str, partition: int) -> None:
        tp = TopicPartition(topic, partition)
        if tp in self._consumer.assignment():
            self._consumer.pause(tp)

    def resume(self, topic: str, partition: int) -> None:
        tp = TopicPartition(topic, partition)
        if tp in self._consumer.assignment():
            self._consumer.resume(tp)


def _incoming(record: ConsumerRecord[bytes, bytes]) -> IncomingRecord:
    """One record as the consumer sees it; a key we cannot read marks it malformed (it is
    parked on its own) instead of failing the whole batch."""
    raw_key = record.key or b""
    malformed = None
    try:
        key = raw_key.decode()
    except UnicodeDecodeError:
        key = raw_key.decode("utf-8", errors="replace")
        malformed = f"the record key is not UTF-8 ({raw_key[:64]!r})"
    return IncomingRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        value=record.value or b"",
        headers=list(record.headers or ()),
        malformed=malformed,
    )


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 6) -> None:
    """Create the topics we use with enough partitions for parallel sagas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another service created it first
    finally:
        await admin.close()
