"""Benchmark (not a test): saga transitions per second in one orchestrator process.

The orchestrator runs here (PostgreSQL + Kafka, batched transactions as in production); a
stand-in worker process answers every command at once, like instant healthy workers, so the
orchestrator is the bottleneck. A transition = one event consumed, decided and its next command
written to the outbox. Needs deploy/local/up.sh. Usage:
    .venv/bin/python bench/orchestrator_throughput.py [--rotations 300] [--sites 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from certrotate_shared.db import make_engine  # noqa: E402
from certrotate_shared.secretbox import generate_master_key  # noqa: E402
from orchestrator.bootstrap import build_runtime  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from tests.integration.orchestrator.support import (  # noqa: E402
    ADMIN,
    INTERNAL,
    fake_certificates_app,
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

WORKER = """
import asyncio, os, sys
sys.path.insert(0, os.environ["REPO"])
from tests.integration.orchestrator.support import StandInWorker
async def main():
    worker = StandInWorker(
        database_url=os.environ["PG"], database_schema=os.environ["SCHEMA"], transport="kafka",
        kafka_bootstrap=os.environ["KAFKA"], topic_prefix=os.environ["PREFIX"],
        master_key=os.environ["KEY"], log_level="WARNING")
    worker.runtime.spec.batch_transactions = True
    await worker.runtime.start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def main(rotations: int, sites: int) -> None:
    run = uuid.uuid4().hex[:8]
    prefix, schema, worker_schema = f"tput{run}", f"tput_orch_{run}", f"tput_worker_{run}"
    key = generate_master_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    env |= {"REPO": str(REPO), "PG": PG, "KAFKA": KAFKA, "PREFIX": prefix, "KEY": key}
    env |= {"SCHEMA": worker_schema, "PYTHONPATH": str(REPO)}
    worker = ServiceProcess(["-c", WORKER], env, "tput-worker")
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
            vault_schema=f"tput_vault_{run}",
            log_level="WARNING",
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
            (await api.post("/v1/sites", json=site_body(name, partners=["hq"]))).raise_for_status()
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
        started = time.perf_counter()
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
        transitions = runtime.consumer.handled - handled_before
        print(
            f"rotations {rotations} on {sites} sites (2 servers each), created in {created:.1f} s"
            f" ({rotations / created:.0f}/s through the API, pre-flight included)"
        )
        print(
            f"all ended after {elapsed:.1f} s: {transitions} transitions, "
            f"{transitions / elapsed:.0f} transitions/s, {rotations / elapsed:.1f} rotations/s"
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=300)
    parser.add_argument("--sites", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.rotations, args.sites))
