"""A rotation started by the API, a campaign or a webhook trigger rings the starter's alarm
(its first deadline may be due before the timer loop would wake); the handlers ring it when a
transition schedules an earlier timer. Both must be the alarm the timer loop bootstrap built
waits on, or a new rotation's first deadline would wait out a whole poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from certrotate_shared.clock import ManualClock
from orchestrator.bootstrap import build_runtime
from orchestrator.service_layer import site_targets, timers
from orchestrator.settings import Settings

pytestmark = pytest.mark.unit


class NoDatabase:
    """The loop's start-up transaction, without a database (its statements are faked)."""

    session = None

    async def commit(self) -> None:
        pass


@asynccontextmanager
async def no_database() -> AsyncIterator[NoDatabase]:
    yield NoDatabase()


async def test_ringing_the_starters_alarm_wakes_the_timer_loop_bootstrap_built(
    master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        master_key=master_key,
        internal_token="internal-token-for-tests-0123456789",
        admin_token="admin-token-for-tests-0123456789abcdef",
        timer_poll_seconds=3600.0,  # only the alarm can wake it within the test
    )
    runtime = build_runtime(
        settings,
        transport=object(),  # type: ignore[arg-type]
        clock=ManualClock(datetime(2031, 3, 1, 12, 0, tzinfo=UTC)),
    )
    passes: asyncio.Queue[None] = asyncio.Queue()

    async def fire_due_timers(*args: Any) -> tuple[int, None]:
        passes.put_nowait(None)
        return 0, None  # nothing due, none scheduled: the loop sleeps a whole poll

    async def publish_missing_targets(*args: Any) -> None:
        pass

    monkeypatch.setattr(timers, "_fire_due_timers", fire_due_timers)
    monkeypatch.setattr(site_targets, "publish_missing_targets", publish_missing_targets)
    monkeypatch.setattr(runtime, "uow", no_database)
    # The starter the routes, campaigns and webhook triggers use, and the handlers' alarm.
    assert runtime.spec.api is not None
    deps = runtime.spec.api(runtime).state.deps
    (loop,) = [job for job in runtime.spec.background if job.__name__ == "timers"]

    async def run_loop() -> None:
        await loop(runtime)

    running = asyncio.create_task(run_loop())
    try:
        await asyncio.wait_for(passes.get(), 5.0)
        deps.starter.alarm.ring()
        await asyncio.wait_for(passes.get(), 5.0)  # woken, not after the hour's poll
        bound = {e: h for e, h in runtime.spec.handlers.items() if isinstance(h, partial)}
        ringing = {e: h for e, h in bound.items() if "alarm" in h.keywords}
        assert ringing, "no handler is given the alarm"
        for event, handler in ringing.items():
            assert handler.keywords["alarm"] is deps.starter.alarm, event.__name__
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
