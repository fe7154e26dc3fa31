"""The message backbone over real PostgreSQL and Kafka, with the worker in another OS process."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from certrotate_shared.db import make_engine
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from certrotate_shared.topics import commands_topic, dlq_topic
from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord
from certrotate_shared.transport.kafka import KafkaSubscription, KafkaTransport
from tests.support.factories import inspect_site, site_target
from tests.support.probe import Probe
from tests.support.processes import REPO, ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture(params=["per-message", "batched"])
async def stack(request, pg_url, kafka_bootstrap, topic_prefix, master_key, pg_schemas, clean_env):
    """Settings for a probe (this process) and a worker (child process) on private schemas."""
    suffix = uuid.uuid4().hex[:8]
    probe_schema, worker_schema = f"probe_{suffix}", f"worker_{suffix}"
    pg_schemas.extend([probe_schema, worker_schema])
    engine = make_engine(pg_url, worker_schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{worker_schema}"'))
        await conn.execute(text("CREATE TABLE echo_side_effects (message_id VARCHAR(36) NOT NULL)"))
    worker_env = {
        **clean_env,
        "PYTHONPATH": str(REPO),
        "CERTROTATE_REPLICATION_DATABASE_URL": pg_url,
        "CERTROTATE_REPLICATION_DATABASE_SCHEMA": worker_schema,
        "CERTROTATE_REPLICATION_MAX_DELIVERY_ATTEMPTS": "2",
        "CERTROTATE_TRANSPORT": "kafka",
        "CERTROTATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CERTROTATE_TOPIC_PREFIX": topic_prefix,
        "CERTROTATE_MASTER_KEY": master_key,
    }
    probe_settings = {
        "database_url": pg_url,
        "database_schema": probe_schema,
        "transport": "kafka",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "master_key": master_key,
    }

    async def side_effects() -> Counter[str]:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT message_id FROM echo_side_effects"))).all()
        return Counter(r.message_id for r in rows)

    workers: list[ServiceProcess] = []

    def worker(*args: str) -> ServiceProcess:
        if request.param == "batched":
            args = (*args, "--batch")
        proc = ServiceProcess(["-m", "tests.support.echo_worker", *args], worker_env, "echo-worker")
        workers.append(proc)
        return proc

    yield probe_settings, worker, side_effects
    for proc in workers:
        proc.stop()
    await engine.dispose()


async def test_command_from_outbox_reaches_worker_process_and_reply_returns(stack):
    probe_settings, worker, side_effects = stack
    proc = worker()
    await proc.start()
    # A small pool, as an operator short of PostgreSQL connections would set it: the sends, the
    # consumer and the relay share its three connections.
    async with Probe(**probe_settings, database_pool_size=3) as probe:
        assert probe.runtime.engine.pool.size() == 3  # type: ignore[attr-defined]
        sent = []
        for _ in range(20):
            saga = str(uuid.uuid4())
            sent += await probe.send(inspect_site(saga), saga_id=saga)
        replies = await probe.wait_replies(20)
    assert {r.type for r in replies} == {"SiteInspected"}
    assert {r.causation_id for r in replies} == {str(e.message_id) for e in sent}
    assert {r.saga_id for r in replies} == {e.saga_id for e in sent}
    assert sorted((await side_effects()).values()) == [1] * 20


async def test_the_outbox_publishes_a_sagas_messages_in_the_order_they_were_emitted(
    pg_url, kafka_bootstrap, topic_prefix, master_key, pg_schemas
):
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    saga = str(uuid.uuid4())
    topic = commands_topic("replication", topic_prefix)
    reader = KafkaSubscription(kafka_bootstrap, f"order-reader-{saga}", [topic], client_id="t")
    await reader.start()
    async with Probe(
        database_url=pg_url,
        database_schema=schema,
        transport="kafka",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        master_key=master_key,
    ) as probe:
        # Two transactions of ten: order must hold inside a relay batch and across batches.
        sent = await probe.send(*(inspect_site(saga, n) for n in range(10)), saga_id=saga)
        sent += await probe.send(*(inspect_site(saga, n) for n in range(10, 20)), saga_id=saga)
        published: list[IncomingRecord] = []
        while len(published) < 20:
            for records in (await reader.poll(5.0)).values():
                published.extend(records)
    await reader.stop()
    assert [Envelope.from_bytes(r.value).message_id for r in published] == [
        e.message_id for e in sent
    ]


async def test_message_delivered_twice_is_handled_once(stack, kafka_bootstrap, topic_prefix):
    probe_settings, worker, side_effects = stack
    proc = worker()
    await proc.start()
    saga = str(uuid.uuid4())
    command = inspect_site(saga)
    envelope = Envelope.wrap(command, saga_id=saga)
    resent = Envelope.wrap(command, saga_id=saga)  # a new message id, the same idempotency key
    record = OutgoingRecord(commands_topic("replication", topic_prefix), saga, envelope.to_bytes())
    producer = KafkaTransport(kafka_bootstrap)
    await producer.start()
    async with Probe(**probe_settings) as probe:
        await producer.publish([record, record])
        await producer.publish([OutgoingRecord(record.topic, saga, resent.to_bytes())])
        replies = await probe.wait_replies(2)
        await asyncio.sleep(1.0)  # room for a wrong third reply to show up
    await producer.stop()
    # The re-sent command is answered with the recorded outcome, without doing it again.
    assert len(probe.replies) == 2
    assert {r.causation_id for r in replies} == {str(envelope.message_id), str(resent.message_id)}
    assert await side_effects() == Counter({str(envelope.message_id): 1})


async def _read(sub: KafkaSubscription, count: int) -> list[IncomingRecord]:
    seen: list[IncomingRecord] = []
    while len(seen) < count:
        for records in (await sub.poll(5.0)).values():
            seen.extend(records)
    return seen


async def test_poison_messages_go_to_dlq_are_reported_and_the_partition_keeps_flowing(
    stack, kafka_bootstrap, topic_prefix
):
    probe_settings, worker, side_effects = stack
    proc = worker()
    await proc.start()
    saga = str(uuid.uuid4())
    topic = commands_topic("replication", topic_prefix)
    failing = Envelope.wrap(
        inspect_site(saga).model_copy(update={"site": site_target("poison")}), saga_id=saga
    )
    no_typed_failure = Envelope.wrap(
        CancelPropagationWatch(idempotency_key=f"{saga}:cancel:1", watch_id="poison"),
        saga_id=saga,
    )
    good = Envelope.wrap(inspect_site(saga, attempt=2), saga_id=saga)
    producer = KafkaTransport(kafka_bootstrap)
    await producer.start()
    dlq = KafkaSubscription(
        kafka_bootstrap, f"dlq-reader-{saga}", [dlq_topic(topic_prefix)], client_id="t"
    )
    await dlq.start()
    async with Probe(**probe_settings) as probe:
        # Same key, so all four share one partition, in this order.
        await producer.publish(
            [
                OutgoingRecord(topic, saga, b"{not json"),
                OutgoingRecord(topic, saga, failing.to_bytes()),
                OutgoingRecord(topic, saga, no_typed_failure.to_bytes()),
                OutgoingRecord(topic, saga, good.to_bytes()),
            ]
        )
        replies = await probe.wait_replies(4)
        dead = await _read(dlq, 2)
    await dlq.stop()
    # Where the bad records really are, read back from the command topic itself.
    source = KafkaSubscription(kafka_bootstrap, f"source-reader-{saga}", [topic], client_id="t")
    await source.start()
    originals = await _read(source, 4)
    await source.stop()
    await producer.stop()
    by_type: dict[str, list[Envelope]] = {}
    for reply in replies:
        by_type.setdefault(reply.type, []).append(reply)
    # The command with a typed failure is answered with it, not parked.
    (answered,) = by_type["SiteInspectionFailed"]
    assert answered.causation_id == str(failing.message_id)
    assert answered.payload["reason"] == "RuntimeError: this site always fails"
    assert answered.payload["retryable"] is False
    assert [r.causation_id for r in by_type["SiteInspected"]] == [str(good.message_id)]
    headers = [dict(r.headers) for r in dead]
    parked = [originals[0], originals[2]]
    # The operator finds each parked message's origin from its headers.
    assert [(h["topic"].decode(), int(h["partition"]), int(h["offset"])) for h in headers] == [
        (r.topic, r.partition, r.offset) for r in parked
    ]
    assert {h["service"] for h in headers} == {b"replication"}
    assert b"undecodable" in headers[0]["error"]
    assert headers[0]["attempts"] == b"1"
    assert b"this watch always fails" in headers[1]["error"]
    assert headers[1]["attempts"] == b"2"
    assert dead[1].value == no_typed_failure.to_bytes()
    # Each parking is reported to the saga, with where the record was and why.
    reports = sorted(by_type["MessageDeadLettered"], key=lambda e: e.payload["offset"])
    assert [e.saga_id for e in reports] == [saga, saga]
    assert [
        (e.payload["topic"], e.payload["partition"], e.payload["offset"], e.payload["attempts"])
        for e in reports
    ] == [(r.topic, r.partition, r.offset, a) for r, a in zip(parked, (1, 2), strict=True)]
    assert reports[1].payload["envelope"] == no_typed_failure.model_dump(mode="json")
    assert reports[1].payload["message_type"] == "CancelPropagationWatch"
    assert reports[1].causation_id == str(no_typed_failure.message_id)
    # The failing handlers' side effects were rolled back with their transactions.
    assert await side_effects() == Counter({str(good.message_id): 1})


async def test_a_transient_failure_holds_its_partition_without_dead_lettering(
    stack, kafka_bootstrap, topic_prefix
):
    probe_settings, worker, side_effects = stack
    proc = worker()
    await proc.start()
    saga = str(uuid.uuid4())
    topic = commands_topic("replication", topic_prefix)
    # Fails (connection refused) more often than max_delivery_attempts (2), then succeeds.
    flaky = Envelope.wrap(
        inspect_site(saga).model_copy(update={"site": site_target("flaky")}), saga_id=saga
    )
    after = Envelope.wrap(inspect_site(saga, attempt=2), saga_id=saga)
    producer = KafkaTransport(kafka_bootstrap)
    await producer.start()
    async with Probe(**probe_settings) as probe:
        await producer.publish(
            [
                OutgoingRecord(topic, saga, flaky.to_bytes()),
                OutgoingRecord(topic, saga, after.to_bytes()),
            ]
        )
        replies = await probe.wait_replies(2)
        await asyncio.sleep(1.0)  # room for a wrong failure or dead-letter report to show up
    await producer.stop()
    assert [(r.type, r.causation_id) for r in probe.replies] == [
        ("SiteInspected", str(flaky.message_id)),
        ("SiteInspected", str(after.message_id)),
    ]
    assert replies[0].payload["site"] == "flaky"
    assert await side_effects() == Counter({str(flaky.message_id): 1, str(after.message_id): 1})
    assert proc.proc is not None and proc.proc.poll() is None


async def test_a_record_with_a_non_utf8_key_is_parked_alone_and_the_consumer_goes_on(
    stack, kafka_bootstrap, topic_prefix
):
    from aiokafka import AIOKafkaProducer

    probe_settings, worker, side_effects = stack
    proc = worker()
    await proc.start()
    topic = commands_topic("replication", topic_prefix)
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()
    dlq = KafkaSubscription(
        kafka_bootstrap, f"dlq-reader-{uuid.uuid4()}", [dlq_topic(topic_prefix)], client_id="t"
    )
    await dlq.start()
    async with Probe(**probe_settings) as probe:
        # Every partition gets a malformed record first, then a good command.
        bad_offsets = []
        for partition in range(6):
            meta = await raw.send_and_wait(
                topic, b"\x00\x01 not json", key=b"\xff\xfe\xfa", partition=partition
            )
            bad_offsets.append((meta.partition, meta.offset))
        sent = []
        for _ in range(12):
            saga = str(uuid.uuid4())
            sent += await probe.send(inspect_site(saga), saga_id=saga)
        # 12 answers and 6 reports of parked records.
        replies = await probe.wait_replies(18)
        dead = await _read(dlq, 6)
    await dlq.stop()
    await raw.stop()
    answers = [r for r in replies if r.type == "SiteInspected"]
    assert {r.causation_id for r in answers} == {str(e.message_id) for e in sent}
    reports = [r.payload for r in replies if r.type == "MessageDeadLettered"]
    assert sorted((p["partition"], p["offset"]) for p in reports) == sorted(bad_offsets)
    assert sorted(
        (int(dict(d.headers)["partition"]), int(dict(d.headers)["offset"])) for d in dead
    ) == sorted(bad_offsets)
    assert all(b"not UTF-8" in dict(d.headers)["error"] for d in dead)
    assert all(d.value == b"\x00\x01 not json" for d in dead)
    assert sorted((await side_effects()).values()) == [1] * 12
    assert proc.proc is not None and proc.proc.poll() is None


async def test_sigkill_between_handling_and_offset_commit_loses_and_doubles_nothing(stack):
    probe_settings, worker, side_effects = stack
    async with Probe(**probe_settings) as probe:
        sent = []
        for _ in range(30):
            saga = str(uuid.uuid4())
            sent += await probe.send(inspect_site(saga), saga_id=saga)
        crashing = worker("--crash-after-handling")
        await crashing.start()
        assert await crashing.wait_exit(60) == -9
        handled_before_crash = await side_effects()
        assert handled_before_crash, "the worker handled nothing before it was killed"
        await worker().start()
        await probe.wait_replies(30)
    effects = await side_effects()
    assert set(effects) == {str(e.message_id) for e in sent}
    assert set(effects.values()) == {1}, "a redelivered command ran its side effect again"


@pytest.mark.parametrize("restart", [False, True])
async def test_round_trip_on_the_in_process_transport_with_sqlite(tmp_path, master_key, restart):
    from sqlalchemy.ext.asyncio import create_async_engine

    from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
    from certrotate_shared.topics import commands_topic as commands
    from certrotate_shared.transport.local import LocalTransport
    from tests.support.echo_worker import EchoSettings, answer_inspect_site

    def make_worker(transport: LocalTransport) -> ServiceRuntime:
        settings = EchoSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/replication.db",
            transport="local",
            master_key=master_key,
        )
        spec = ServiceSpec(
            name="replication",
            handlers={type(inspect_site()): answer_inspect_site},
            topics=lambda prefix: [commands("replication", prefix)],
        )
        return ServiceRuntime(settings, spec, transport=transport)

    db = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/replication.db")
    async with db.begin() as conn:
        await conn.execute(text("CREATE TABLE echo_side_effects (message_id VARCHAR(36))"))
    probe_settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/orchestrator.db",
        "transport": "local",
        "master_key": master_key,
    }
    transport = LocalTransport(str(tmp_path / "transport.db"))
    saga = str(uuid.uuid4())
    async with Probe(bus=transport, **probe_settings) as probe:
        sent = await probe.send(inspect_site(saga), inspect_site(saga, attempt=2), saga_id=saga)
        if restart:
            # The process stops with both commands still unhandled; a new one carries on.
            await asyncio.sleep(0.2)
    if restart:
        await transport.stop()
        transport = LocalTransport(str(tmp_path / "transport.db"))
    worker = make_worker(transport)
    await worker.start()
    async with Probe(bus=transport, **probe_settings) as probe:
        replies = await probe.wait_replies(2, timeout=20)
        await asyncio.sleep(0.3)
    await worker.stop()
    await transport.stop()
    assert sorted(r.causation_id or "" for r in replies) == sorted(str(e.message_id) for e in sent)
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT message_id FROM echo_side_effects"))).all()
    await db.dispose()
    assert sorted(r.message_id for r in rows) == sorted(str(e.message_id) for e in sent)
