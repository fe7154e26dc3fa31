"""Benchmark (not a test): saga transitions per second in one orchestrator process.

The orchestrator runs here (PostgreSQL + Kafka, batched transactions as in production); a
stand-in worker process answers every command at once, like instant healthy workers, so the
orchestrator is the bottleneck. A transition = one event consumed, decided and its next command
written to the outbox. Needs deploy/local/up.sh. Usage:
    .venv/bin/python bench/orchestrator_throughput.py [--rotations 300] [--sites 300] [--worker light|full] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from certrotate_shared import event_loop  # noqa: E402
from certrotate_shared.db import make_engine  # noqa: E402
from certrotate_shared.secretbox import generate_master_key  # noqa: E402
from orchestrator.bootstrap import build_runtime  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from tests.integration.orchestrator.harness import fake_certificates_app  # noqa: E402
from tests.integration.orchestrator.support import (  # noqa: E402
    ADMIN,
    INTERNAL,
    fake_monitor_app,
    rotation_body,
    server_body,
    site_body,
)
from tests.support.processes import ServiceProcess  # noqa: E402

PG = os.environ.get(
    "CERTROTATE_TEST_PG_URL", "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate"
)
KAFKA = os.environ.get("CERTROTATE_TEST_KAFKA", "127.0.0.1:9092")

# The full stand-in: the real consumer with its own inbox, outcome records and outbox in
# PostgreSQL, so it costs about as much CPU and as many commits as the orchestrator itself.
FULL_WORKER = """
import asyncio, os, sys
sys.path.insert(0, os.environ["REPO"])
from tests.integration.orchestrator.support import StandInWorker
from certrotate_shared import event_loop
async def main():
    worker = StandInWorker(
        database_url=os.environ["PG"], database_schema=os.environ["SCHEMA"], transport="kafka",
        kafka_bootstrap=os.environ["KAFKA"], topic_prefix=os.environ["PREFIX"],
        master_key=os.environ["KEY"], log_level="WARNING")
    worker.runtime.spec.batch_transactions = True
    await worker.runtime.start()
    print("ready", flush=True)
    await asyncio.Event().wait()
event_loop.run(main())
"""

# The light stand-in (the default): reads the commands straight from Kafka and answers each with
# its success event straight to Kafka (acks=all), no database of its own. What is timed is then
# the orchestrator's loop (consume, decide, commit, relay) with PostgreSQL and Kafka, not a
# second service's exactly-once machinery sharing the same two cores.
LIGHT_WORKER = """
import asyncio, os, sys
sys.path.insert(0, os.environ["REPO"])
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.certificates import PurgeCertificateBundle
from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from certrotate_shared.topics import commands_topic, events_topic
from tests.unit.orchestrator.saga_driver import success
async def main():
    prefix = os.environ["PREFIX"]
    topics = [commands_topic(s, prefix) for s in ("replication", "certificates", "client-monitor")]
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=os.environ["KAFKA"],
        group_id=prefix + ".light", auto_offset_reset="earliest", fetch_max_wait_ms=100)
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA"], acks="all",
        enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    print("ready", flush=True)
    events = events_topic(prefix)
    while True:
        batches = await consumer.getmany(timeout_ms=500)
        futures = []
        for records in batches.values():
            for record in records:
                envelope = Envelope.from_bytes(record.value)
                command = envelope.message()
                if isinstance(command, PurgeCertificateBundle | CancelPropagationWatch):
                    continue
                reply = Envelope.wrap(success(command), saga_id=envelope.saga_id, causation=envelope)
                futures.append(await producer.send(events, reply.to_bytes(), key=record.key))
        if futures:
            await asyncio.gather(*futures)
asyncio.run(main())
"""


async def main(rotations: int, sites: int, worker_kind: str, profile: str | None) -> None:
    # CPU time, not wall time: on a shared machine the wall clock counts the waits for a core.
    profiler = cProfile.Profile(time.process_time)
    run = uuid.uuid4().hex[:8]
    prefix, schema, worker_schema = f"tput{run}", f"tput_orch_{run}", f"tput_worker_{run}"
    key = generate_master_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    env |= {"REPO": str(REPO), "PG": PG, "KAFKA": KAFKA, "PREFIX": prefix, "KEY": key}
    # What this process imports from (a checkout compared against this one), then REPO.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env |= {"SCHEMA": worker_schema, "PYTHONPATH": path}
    env[event_loop.VARIABLE] = os.environ.get(event_loop.VARIABLE, "auto")
    script = LIGHT_WORKER if worker_kind == "light" else FULL_WORKER
    worker = ServiceProcess(["-c", script], env, "tput-worker")
    runtime = build_runtime(
        Settings(
            database_url=PG,
            database_schema=schema,
            transport="kafka",
            kafka_bootstrap=KAFKA,
            topic_prefix=prefix,
            master_key=key,
            admin_token=ADMIN,
            internal_token=INTERNAL,
            vault_url=PG,
            vault_schema=f"tput_vault_{run}",
            log_level="WARNING",
            rehearsal=True,  # the stand-in sites use the twin driver
        ),
        certificates_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fake_certificates_app()), base_url="http://c"
        ),
        client_monitor_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fake_monitor_app()), base_url="http://m"
        ),
    )
    await runtime.start(serve_http=False)
    assert runtime.app is not None
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app),
        base_url="http://orchestrator",
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=60,
    )
    try:
        for i in range(sites):
            name = f"site-{i}"
            answer = await api.post("/v1/sites", json=site_body(name, partners=[f"{name}-dr"]))
            assert answer.status_code == 201, answer.text
            for j in range(2):
                body = server_body(f"{name}-sepm-{j}", site=name)
                (await api.post("/v1/servers", json=body)).raise_for_status()
        # Every rotation is created (and waits for its first answer) before the worker starts,
        # so what is timed is the orchestrator moving sagas, not the API creating them.
        started = time.perf_counter()
        for i in range(rotations):
            response = await api.post("/v1/rotations", json=rotation_body(f"site-{i % sites}"))
            response.raise_for_status()
        created = time.perf_counter() - started
        await worker.start()
        handled_before = runtime.consumer.handled
        worker_cpu_before = _cpu_seconds(worker)
        started, cpu_started = time.perf_counter(), time.process_time()
        if profile:
            profiler.enable()
        engine = make_engine(PG, schema)
        while True:
            async with engine.connect() as conn:
                done = await conn.scalar(
                    text(
                        "SELECT count(*) FROM sagas WHERE status IN ('completed','failed','compensated','paused')"
                    )
                )
            if done >= rotations:
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        worker_cpu = _cpu_seconds(worker) - worker_cpu_before
        if profile:
            profiler.disable()
            profiler.dump_stats(profile)
        transitions = runtime.consumer.handled - handled_before
        print(
            f"rotations {rotations} on {sites} sites (2 servers each), created in {created:.1f} s"
            f" ({rotations / created:.0f}/s through the API, pre-flight included)"
        )
        print(
            f"all ended after {elapsed:.1f} s: {transitions} transitions, "
            f"{transitions / elapsed:.0f} transitions/s, {rotations / elapsed:.1f} rotations/s,"
            f" orchestrator CPU {cpu / max(transitions, 1) * 1000:.2f} ms per transition"
            f" ({cpu / elapsed:.0%} of a core); the {worker_kind} stand-in worker"
            f" {worker_cpu / max(transitions, 1) * 1000:.2f} ms ({worker_cpu / elapsed:.0%});"
            f" load {os.getloadavg()[0]:.1f}"
        )
        await engine.dispose()
    finally:
        await api.aclose()
        await runtime.stop()
        worker.stop()
        cleanup = make_engine(PG, "public")
        async with cleanup.begin() as conn:
            for s in (schema, worker_schema, f"tput_vault_{run}"):
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
        await cleanup.dispose()


def _cpu_seconds(process: ServiceProcess) -> float:
    """User + system CPU time of a child process so far (Linux /proc)."""
    assert process.proc is not None
    fields = Path(f"/proc/{process.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=300)
    # One active rotation per site (the API refuses a second one): as many sites as rotations.
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument(
        "--worker",
        choices=("light", "full"),
        default="light",
        help="light: answers straight from Kafka to Kafka; full: a real consumer with its own"
        " inbox/outbox in PostgreSQL",
    )
    parser.add_argument("--profile", help="write a cProfile of the timed window to this file")
    args = parser.parse_args()
    # The loop the services run on (CERTROTATE_EVENT_LOOP, else auto): here, and in the full
    # stand-in (a service's runtime); the light one is not a service and stays on asyncio's.
    event_loop.run(main(args.rotations, args.sites, args.worker, args.profile))
