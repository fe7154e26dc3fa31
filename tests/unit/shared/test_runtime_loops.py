"""A service's background loops (job runner, watch board, timers) survive an error: the runtime
restarts a loop that raised, with back-off, and /readyz says so while it is down."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.local import LocalTransport
from tests.support.echo_worker import EchoSettings

pytestmark = pytest.mark.unit


async def test_a_background_loop_that_raises_is_restarted_and_readiness_fails_meanwhile(
    tmp_path, master_key
) -> None:
    runs = 0
    crashed, release, second_run = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def jobs(runtime: ServiceRuntime) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            crashed.set()
            raise ConnectionRefusedError(111, "the database is restarting")
        second_run.set()
        await asyncio.Event().wait()

    settings = EchoSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/worker.db",
        transport="local",
        master_key=master_key,
        consumer_restart_base_s=0.01,
    )
    spec = ServiceSpec(
        name="replication",
        handlers={},
        topics=lambda prefix: [commands_topic("replication", prefix)],
        background=[jobs],
        api=lambda runtime: FastAPI(),
    )
    transport = LocalTransport(str(tmp_path / "log.db"))
    pauses: list[float] = []

    async def restart_pause(seconds: float) -> None:
        # The back-off before the restart lasts until the test has looked at readiness.
        pauses.append(seconds)
        await release.wait()

    runtime = ServiceRuntime(settings, spec, transport=transport, restart_sleep=restart_pause)
    await runtime.start(serve_http=False)
    assert runtime.app is not None
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=runtime.app), base_url="http://worker"
        ) as client:
            await asyncio.wait_for(crashed.wait(), 10)
            while not pauses:
                await asyncio.sleep(0)
            down = await client.get("/readyz")
            release.set()
            await asyncio.wait_for(second_run.wait(), 10)
            up = await client.get("/readyz")
    finally:
        await runtime.stop()
        await transport.stop()
    assert down.status_code == 503
    assert "jobs" in down.json()["detail"]
    assert runs == 2
    assert pauses == [pytest.approx(0.01, rel=0.5)]  # consumer_restart_base_s, with jitter
    assert up.status_code == 200, up.text
