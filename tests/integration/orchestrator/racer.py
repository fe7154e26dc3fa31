"""A child process that requests rotations of one site as soon as its sibling is ready too.

Runs in a process started with the "spawn" method, so it must be importable and picklable."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from certrotate_shared.clock import ManualClock
from certrotate_shared.runtime import ServiceRuntime
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
from tests.integration.orchestrator.support import (
    ADMIN,
    fake_certificates_app,
    fake_monitor_app,
    rotation_body,
)


def build(settings: dict[str, Any], clock: ManualClock) -> ServiceRuntime:
    return build_runtime(
        Settings(**settings),
        clock=clock,
        certificates_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fake_certificates_app()), base_url="http://c"
        ),
        client_monitor_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fake_monitor_app()), base_url="http://m"
        ),
    )


def client(runtime: ServiceRuntime) -> httpx.AsyncClient:
    assert runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app),
        base_url="http://orch",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )


def race(settings: dict[str, Any], site: str, n: int, barrier: Any, results: Any) -> None:
    """Put [(status, body), ...] of n concurrent POST /v1/rotations on `results`."""

    async def main() -> list[tuple[int, Any]]:
        runtime = build(settings, ManualClock())
        await runtime.start(serve_http=False)
        try:
            async with client(runtime) as api:
                await asyncio.get_running_loop().run_in_executor(None, barrier.wait, 60)
                answers = await asyncio.gather(
                    *(api.post("/v1/rotations", json=rotation_body(site)) for _ in range(n))
                )
                return [(a.status_code, a.json()) for a in answers]
        finally:
            await runtime.stop()

    results.put(asyncio.run(main()))
