"""The Kafka transport (aiokafka): idempotent producer, manual offset commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from certrotate_shared.settings import ServiceSettings
from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord

log = logging.getLogger(__name__)


def kafka_security(settings: ServiceSettings) -> dict[str, Any]:
    """aiokafka's security options from the settings: TLS context, SASL account (the password
    read from its file)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.endswith("SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_ca_file or None,
            certfile=settings.kafka_ssl_cert_file or None,
            keyfile=settings.kafka_ssl_key_file or None,
        )
    if settings.kafka_security_protocol.startswith("SASL"):
        password = Path(settings.kafka_sasl_password_file).read_text().rstrip("\r\n")
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": _Secret(password),
        }
    return options


class _Secret(str):
    """The SASL password as aiokafka wants it (a str), without showing it in a repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


class KafkaTransport:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "certrotate",
        security: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._security = security or {}
        self._producer: AIOKafkaProducer | None = None

    def producer(self) -> AIOKafkaProducer:
        """A new idempotent producer with this transport's security options (not started)."""
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            request_timeout_ms=15000,
            **self._security,
        )

    async def start(self) -> None:
        self._producer = self.producer()
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
        return KafkaSubscription(
            self.bootstrap, group, topics, client_id=self.client_id, security=self._security
        )


class KafkaSubscription:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: list[str],
        *,
        client_id: str,
        security: dict[str, Any] | None = None,
    ) -> None:
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
            **(security or {}),
        )
        self._committed: dict[tuple[str, int], int] = {}

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
        # Offsets wait up to the consumer's commit interval: a rebalance may have given some of
        # their partitions to another replica meanwhile. Those are its to commit now; it starts
        # from the last commit and its inbox drops what it sees again. Only what is still held.
        held = self._consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(record.offset + 1, "")
            for (topic, partition), record in last.items()
            if (tp := TopicPartition(topic, partition)) in held
        }
        if len(offsets) < len(last):
            log.info(
                "%d partition(s) moved to another consumer before their offsets were committed",
                len(last) - len(offsets),
            )
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced while this commit was on its way: as above, whoever holds
            # the partitions now starts from the last commit, and the inboxes drop the copies.
            log.warning("offsets not committed, the group rebalanced: %s", exc)
            return
        for tp, offset in offsets.items():
            self._committed[(tp.topic, tp.partition)] = offset.offset

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

    async def lag(self) -> dict[tuple[str, int], int]:
        # The high watermark comes with every fetch: no broker round trip per scrape.
        lags: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is None:
                continue
            done = self._committed.get((tp.topic, tp.partition))
            if done is None:
                done = await self._consumer.position(tp)
            lags[(tp.topic, tp.partition)] = max(end - done, 0)
        return lags


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


def admin_client(bootstrap: str, security: dict[str, Any] | None = None) -> AIOKafkaAdminClient:
    """An admin client with the same security options as the producer and consumers."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(security or {}))


async def ensure_topics(
    bootstrap: str,
    topics: list[str],
    partitions: int = 6,
    *,
    security: dict[str, Any] | None = None,
) -> None:
    """Create the topics we use with enough partitions for parallel sagas."""
    admin = admin_client(bootstrap, security)
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
