"""A child process that requests rotations of one site as soon as its sibling is ready too.

Runs in a process started with the "spawn" method, so it must be importable and picklable."""

from __future__ import annotations

import asyncio
from typing import Any

from certrotate_shared.clock import ManualClock
from tests.integration.orchestrator.harness import api_client, orchestrator
from tests.integration.orchestrator.support import rotation_body


def race(settings: dict[str, Any], site: str, n: int, barrier: Any, results: Any) -> None:
    """Put [(status, body), ...] of n concurrent POST /v1/rotations on `results`."""

    async def main() -> list[tuple[int, Any]]:
        runtime = orchestrator(settings, clock=ManualClock())
        await runtime.start(serve_http=False)
        try:
            async with api_client(runtime) as api:
                await asyncio.get_running_loop().run_in_executor(None, barrier.wait, 60)
                answers = await asyncio.gather(
                    *(api.post("/v1/rotations", json=rotation_body(site)) for _ in range(n))
                )
                return [(a.status_code, a.json()) for a in answers]
        finally:
            await runtime.stop()

    results.put(asyncio.run(main()))
