"""Benchmark (not a test): the floor under bench/step_latency.py on this machine.

The same durable hops as a certrotate step, written with nothing but asyncpg and aiokafka (no
certrotate code, no SQLAlchemy, no pydantic), so that what step_latency measures can be read
against what the machine allows for that path:

    sender: INSERT the command into its outbox (one statement, synchronous commit)
        -> produce (acks=all, idempotent) -> worker process: fetch
    worker: BEGIN; inbox INSERT; the side effect's INSERT; outbox INSERT; COMMIT
        -> produce (acks=all, idempotent) -> sender: fetch
    sender: BEGIN; inbox INSERT  <- the round trip ends here, as in step_latency; then COMMIT

A fetched batch is handled in one transaction (as the services do); rows are never deleted
(off the critical path in the services too). Needs PostgreSQL and Kafka from
deploy/local/up.sh. Usage:
    .venv/bin/python bench/step_floor.py [--per-level 2000] [--levels 1,64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))

from certrotate_shared import event_loop  # noqa: E402

PG = os.environ.get("CERTROTATE_TEST_PG_DSN", "postgresql://certrotate@127.0.0.1:55432/certrotate")
KAFKA = os.environ.get("CERTROTATE_TEST_KAFKA", "127.0.0.1:9092")

TABLES = """
CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, message_id VARCHAR(36), key VARCHAR(36),
                     value BYTEA, created_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE inbox (message_id VARCHAR(36) PRIMARY KEY, received_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE side_effects (message_id VARCHAR(36) NOT NULL);
"""
OUTBOX = "INSERT INTO outbox (message_id, key, value) SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bytea[])"
INBOX = "INSERT INTO inbox (message_id) SELECT * FROM unnest($1::varchar[]) ON CONFLICT DO NOTHING RETURNING message_id"
EFFECT = "INSERT INTO side_effects (message_id) SELECT * FROM unnest($1::varchar[])"
# A message as big as a step_latency command envelope (~600 bytes).
PAD = b"x" * 560


def kafka_clients(group: str, topic: str) -> tuple[AIOKafkaProducer, AIOKafkaConsumer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=0
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_poll_records=500,
    )
    return producer, consumer


async def pool(schema: str) -> asyncpg.Pool:
    """Connections as the services' (certrotate_shared.db: 20, no overflow)."""
    return await asyncpg.create_pool(
        PG,
        min_size=20,
        max_size=20,
        server_settings={"search_path": schema, "synchronous_commit": "on"},
    )


async def worker(schema: str, commands: str, replies: str) -> None:
    """Answer each command, durably, as a worker service does: a fetched batch's partitions
    at once, each in one transaction."""
    db = await pool(schema)
    producer, consumer = kafka_clients(f"{commands}.worker", commands)
    await producer.start()
    await consumer.start()
    print("ready", flush=True)

    async def answer(records: list[Any]) -> None:
        ids = [r.value[:36].decode() for r in records]
        replies_ids = [str(uuid.uuid4()) for _ in records]
        async with db.acquire() as conn, conn.transaction():
            fresh = {r["message_id"] for r in await conn.fetch(INBOX, ids)}
            await conn.execute(EFFECT, [i for i in ids if i in fresh])
            await conn.execute(
                OUTBOX,
                replies_ids,
                [r.key.decode() for r in records],
                [(a + c).encode() + PAD for a, c in zip(replies_ids, ids, strict=True)],
            )
        futures = [
            await producer.send(replies, (a + c).encode() + PAD, key=r.key)
            for a, c, r in zip(replies_ids, ids, records, strict=True)
            if c in fresh
        ]
        await asyncio.gather(*futures)

    while True:
        batches = await consumer.getmany(timeout_ms=500)
        await asyncio.gather(*(answer(records) for records in batches.values()))
        await consumer.commit()


async def main(per_level: int, levels: list[int]) -> None:
    run = uuid.uuid4().hex[:8]
    schema, worker_schema = f"floor_{run}", f"floor_worker_{run}"
    commands, replies = f"floor{run}.commands", f"floor{run}.replies"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in (commands, replies)])
    await admin.close()
    setup = await asyncpg.connect(PG)
    for s in (schema, worker_schema):
        await setup.execute(f'CREATE SCHEMA "{s}"; SET search_path = "{s}"; {TABLES}')
    await setup.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--worker",
        worker_schema,
        commands,
        replies,
        stdout=asyncio.subprocess.PIPE,
    )
    db = await pool(schema)
    producer, consumer = kafka_clients(f"{replies}.sender", replies)
    waiting: dict[str, asyncio.Future[float]] = {}
    stop = False

    async def take(records: list[Any]) -> None:
        causes = [r.value[36:72].decode() for r in records]
        async with db.acquire() as conn, conn.transaction():
            await conn.fetch(INBOX, [r.value[:36].decode() for r in records])
            now = time.perf_counter()
            for cause in causes:
                future = waiting.pop(cause, None)
                if future is not None and not future.done():
                    future.set_result(now)

    async def receive() -> None:
        while not stop:
            batches = await consumer.getmany(timeout_ms=100)
            await asyncio.gather(*(take(records) for records in batches.values()))
            await consumer.commit()

    async def round_trip() -> float:
        saga, message = str(uuid.uuid4()), str(uuid.uuid4())
        value = message.encode() + PAD
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        waiting[message] = future
        started = time.perf_counter()
        async with db.acquire() as conn:
            await conn.execute(OUTBOX, [message], [saga], [value])
        await producer.send_and_wait(commands, value, key=saga.encode())
        return (await asyncio.wait_for(future, 30)) - started

    try:
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        await producer.start()
        await consumer.start()
        receiver = asyncio.create_task(receive())
        for _ in range(50):
            await round_trip()
        print(f"event loop: {event_loop.running_loop_name()}")
        print(
            f"{'in flight':>9} {'round trips':>11} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'per s':>7}"
            "  CPU ms per round trip: this process (sender + receiver), worker"
        )
        for level in levels:
            latencies: list[float] = []
            budget = [per_level]

            async def loop(out: list[float], budget: list[int]) -> None:
                while budget[0] > 0:
                    budget[0] -= 1
                    out.append(await round_trip())

            started, cpu, worker_cpu = time.perf_counter(), time.process_time(), _cpu(proc.pid)
            await asyncio.gather(*(loop(latencies, budget) for _ in range(level)))
            wall = time.perf_counter() - started
            cpu, worker_cpu = time.process_time() - cpu, _cpu(proc.pid) - worker_cpu
            ms = sorted(x * 1000 for x in latencies)
            print(
                f"{level:>9} {len(ms):>11} {statistics.median(ms):>7.1f}"
                f" {ms[int(len(ms) * 0.95)]:>7.1f} {ms[int(len(ms) * 0.99)]:>7.1f}"
                f" {len(ms) / wall:>7.0f}  {cpu / len(ms) * 1000:.2f} ({cpu / wall:.0%} of a core),"
                f" {worker_cpu / len(ms) * 1000:.2f} ({worker_cpu / wall:.0%});"
                f" load {os.getloadavg()[0]:.1f}"
            )
        stop = True
        await receiver
    finally:
        proc.terminate()
        await proc.wait()
        await producer.stop()
        await consumer.stop()
        await db.close()
        cleanup = await asyncpg.connect(PG)
        for s in (schema, worker_schema):
            await cleanup.execute(f'DROP SCHEMA "{s}" CASCADE')
        await cleanup.close()


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        event_loop.run(worker(*sys.argv[2:5]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-level", type=int, default=2000)
    parser.add_argument("--levels", default="1,64")
    args = parser.parse_args()
    event_loop.run(main(args.per_level, [int(x) for x in args.levels.split(",")]))
