"""`certrotate up --mode distributed` underneath: run_distributed starts the four processes,
restarts one that crashes, and stops them all on request."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from certrotate.distributed import SERVICES, ServiceStartError, Supervisor, run_distributed
from certrotate.stack import ClockSync
from tests.e2e.secret_scan import SecretScan
from tests.e2e.support import LOG_ROOT, distributed_config, until

pytestmark = pytest.mark.e2e


async def test_run_distributed_restarts_a_crashed_service_and_stops_cleanly(
    pg_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    pg_schemas: list[str],
    secret_scan: SecretScan,
) -> None:
    config = distributed_config(
        pg_url=pg_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        clock=ClockSync(speed=1.0, real_ms=0, sim_ms=0),
        log_dir=LOG_ROOT / f"up-{topic_prefix}",
    )
    secret_scan.stack_secrets(config.master_key, config.internal_token, config.admin_token)
    secret_scan.log_dir(config.log_dir)
    secret_scan.watch_kafka(kafka_bootstrap, topic_prefix)
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
            assert (await api.get("/v1/sites")).json()["items"] == []
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


async def test_a_service_that_cannot_start_is_reported_with_its_log(
    pg_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    pg_schemas: list[str],
    secret_scan: SecretScan,
) -> None:
    config = distributed_config(
        pg_url=pg_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        clock=ClockSync(speed=1.0, real_ms=0, sim_ms=0),
        log_dir=LOG_ROOT / f"bad-{topic_prefix}",
    )
    secret_scan.stack_secrets(config.master_key, config.internal_token, config.admin_token)
    secret_scan.log_dir(config.log_dir)
    config.master_key = "changeme"  # a placeholder from the docs: every service refuses it
    pg_schemas.extend(config.schemas())
    supervisor = Supervisor(config)
    with pytest.raises(ServiceStartError) as failure:
        await supervisor.start(timeout=60)
    message = str(failure.value)
    assert "exited with code 2 before it was ready" in message
    assert "MASTER_KEY" in message and "a master key is required" in message
    assert "changeme" not in message.split("\n", 1)[1]  # the log names the variable, not its value
    assert not any(service.running for service in supervisor.services.values())
