"""`certrotate up --mode distributed` underneath: run_distributed starts the four processes,
restarts one that crashes, and stops them all on request."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from certrotate.distributed import SERVICES, Supervisor, run_distributed
from certrotate.stack import ClockSync
from tests.e2e.support import LOG_ROOT, distributed_config, until

pytestmark = pytest.mark.e2e


async def test_run_distributed_restarts_a_crashed_service_and_stops_cleanly(
    pg_url: str, kafka_bootstrap: str, topic_prefix: str, pg_schemas: list[str]
) -> None:
    config = distributed_config(
        pg_url=pg_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        clock=ClockSync(speed=1.0, real_ms=0, sim_ms=0),
        log_dir=LOG_ROOT / f"up-{topic_prefix}",
    )
    pg_schemas.extend(config.schemas())
    ready: asyncio.Future[Supervisor] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    running = asyncio.ensure_future(run_distributed(config, on_ready=ready.set_result, stop=stop))
    try:
        supervisor = await asyncio.wait_for(asyncio.shield(ready), 120)
        pids = {name: supervisor.services[name].pid for name in SERVICES}
        async with httpx.AsyncClient(
            base_url=supervisor.api_url,
            headers={"Authorization": f"Bearer {config.admin_token}"},
        ) as api:
            assert (await api.get("/v1/sites")).json() == {"items": []}
            for name in SERVICES:
                async with httpx.AsyncClient(base_url=supervisor.url(name)) as http:
                    assert (await http.get("/healthz")).status_code == 200, name

            # The certificates service crashes (not through the supervisor).
            pid = pids["certificates"]
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

            async def restarted() -> bool:
                service = supervisor.services["certificates"]
                return service.starts == 2 and service.ready and service.running

            await until(restarted, timeout=60, what="the crashed service to be restarted")
            certificates = supervisor.services["certificates"]
            assert certificates.pid != pid
            # On the same port: the orchestrator still reaches it.
            async with httpx.AsyncClient(base_url=supervisor.url("certificates")) as http:
                assert (await http.get("/healthz")).status_code == 200
            assert [supervisor.services[n].pid for n in SERVICES if n != "certificates"] == [
                pids[n] for n in SERVICES if n != "certificates"
            ]
        stop.set()
        assert await asyncio.wait_for(running, 60) == 0
        assert all(not supervisor.services[n].running for n in SERVICES)
        assert {supervisor.services[n].proc.returncode for n in SERVICES} == {0}  # type: ignore[union-attr]
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
