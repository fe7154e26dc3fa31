"""Benchmark (not a test): command -> worker -> reply event round trip on the real stack.

Path measured: handler transaction writes the command to the outbox -> relay (woken by
LISTEN/NOTIFY) -> Kafka -> worker process (inbox, handler, outbox) -> relay -> Kafka ->
this process's consumer (inbox) -> handler sees the reply.

Needs PostgreSQL and Kafka from deploy/local/up.sh. Usage:
    .venv/bin/python bench/step_latency.py [--per-level 2000] [--levels 1,8,64]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from certrotate_shared import event_loop  # noqa: E402
from certrotate_shared.consumer import Context  # noqa: E402
from certrotate_shared.db import make_engine  # noqa: E402
from certrotate_shared.envelope import Event, Message  # noqa: E402
from certrotate_shared.messages.replication import SiteInspected  # noqa: E402
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec  # noqa: E402
from certrotate_shared.secretbox import generate_master_key  # noqa: E402
from certrotate_shared.topics import events_topic  # noqa: E402
from tests.support.factories import inspect_site  # noqa: E402
from tests.support.probe import ProbeSettings  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402

PG = os.environ.get(
    "CERTROTATE_TEST_PG_URL", "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate"
)
KAFKA = os.environ.get("CERTROTATE_TEST_KAFKA", "127.0.0.1:9092")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def main(per_level: int, levels: list[int], batch: bool) -> None:
    run = uuid.uuid4().hex[:8]
    prefix, probe_schema, worker_schema = f"bench{run}", f"bench_probe_{run}", f"bench_worker_{run}"
    key = generate_master_key()
    engine = make_engine(PG, worker_schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{worker_schema}"'))
        await conn.execute(text("CREATE TABLE echo_side_effects (message_id VARCHAR(36) NOT NULL)"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    env.update(
        # What this process imports from (a checkout compared against this one), then REPO.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        CERTROTATE_REPLICATION_DATABASE_URL=PG,
        CERTROTATE_REPLICATION_DATABASE_SCHEMA=worker_schema,
        CERTROTATE_TRANSPORT="kafka",
        CERTROTATE_KAFKA_BOOTSTRAP=KAFKA,
        CERTROTATE_TOPIC_PREFIX=prefix,
        CERTROTATE_MASTER_KEY=key,
        CERTROTATE_LOG_LEVEL="WARNING",
        CERTROTATE_EVENT_LOOP=os.environ.get(event_loop.VARIABLE, "auto"),
    )
    worker_args = ["-m", "tests.support.echo_worker"] + (["--batch"] if batch else [])
    worker = ServiceProcess(worker_args, env, "bench-worker")
    waiting: dict[str, asyncio.Future[float]] = {}

    async def on_reply(message: Message, ctx: Context) -> Event | None:
        future = waiting.pop(ctx.envelope.causation_id or "", None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())
        return None

    probe = ServiceRuntime(
        ProbeSettings(
            database_url=PG,
            database_schema=probe_schema,
            transport="kafka",
            kafka_bootstrap=KAFKA,
            topic_prefix=prefix,
            master_key=key,
        ),
        ServiceSpec(
            name="orchestrator",
            handlers={SiteInspected: on_reply},
            topics=lambda p: [events_topic(p)],
            batch_transactions=batch,
        ),
    )
    await worker.start()
    await probe.start()
    loop = asyncio.get_running_loop()

    async def round_trip() -> float:
        saga = str(uuid.uuid4())
        started = time.perf_counter()
        async with probe.uow() as uow:
            envelope = uow.emit(inspect_site(saga), saga_id=saga)
            future: asyncio.Future[float] = loop.create_future()
            waiting[str(envelope.message_id)] = future
            await uow.commit()
        return (await asyncio.wait_for(future, 30)) - started

    try:
        for _ in range(50):  # warm up connections, partitions and the consumer groups
            await round_trip()
        print(
            f"{'in flight':>9} {'round trips':>11} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
            f" {'per s':>7}  CPU ms per round trip: this process (sender + receiver), worker"
        )
        for level in levels:
            latencies: list[float] = []
            budget = [per_level]

            async def saga_loop(out: list[float], budget: list[int]) -> None:
                while budget[0] > 0:
                    budget[0] -= 1
                    out.append(await round_trip())

            started, cpu, worker_cpu = time.perf_counter(), time.process_time(), _cpu(worker)
            await asyncio.gather(*(saga_loop(latencies, budget) for _ in range(level)))
            elapsed = time.perf_counter() - started
            cpu, worker_cpu = time.process_time() - cpu, _cpu(worker) - worker_cpu
            ms = [x * 1000 for x in latencies]
            print(
                f"{level:>9} {len(ms):>11} {statistics.median(ms):>7.1f} {pct(ms, 0.95):>7.1f}"
                f" {pct(ms, 0.99):>7.1f} {len(ms) / elapsed:>7.0f}"
                f"  {cpu / len(ms) * 1000:.2f} ({cpu / elapsed:.0%} of a core),"
                f" {worker_cpu / len(ms) * 1000:.2f} ({worker_cpu / elapsed:.0%});"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        await probe.stop()
        worker.stop()
        async with engine.begin() as conn:
            for schema in (worker_schema, probe_schema):
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


def _cpu(process: ServiceProcess) -> float:
    """User + system CPU seconds of a child process so far (Linux /proc)."""
    assert process.proc is not None
    fields = Path(f"/proc/{process.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-level", type=int, default=2000)
    parser.add_argument("--levels", default="1,8,64")
    parser.add_argument(
        "--per-message", action="store_true", help="one transaction per message (no batching)"
    )
    args = parser.parse_args()
    # The loop the services run on (CERTROTATE_EVENT_LOOP, else auto), here and in the worker.
    event_loop.run(
        main(args.per_level, [int(x) for x in args.levels.split(",")], not args.per_message)
    )
