"""Time is injected, so tests and the twin can run weeks in seconds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None:
        """Sleep this many seconds of this clock's time."""


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Accelerated time shared with the twin: `speed` simulated seconds per real second.

    At real instant `real_origin_ms` the simulated time was `sim_origin_ms`; two processes
    built with the same three numbers agree on the time.
    """

    def __init__(
        self, speed: float, real_origin_ms: int | None = None, sim_origin_ms: int | None = None
    ) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._real_origin = real_origin_ms / 1000.0 if real_origin_ms is not None else time.time()
        self._sim_origin = (
            sim_origin_ms / 1000.0 if sim_origin_ms is not None else self._real_origin
        )

    def now(self) -> datetime:
        elapsed = (time.time() - self._real_origin) * self.speed
        return datetime.fromtimestamp(self._sim_origin + elapsed, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


def make_clock(
    speed: float, real_origin_ms: int | None = None, sim_origin_ms: int | None = None
) -> Clock:
    """The system clock, or a scaled one when time is accelerated."""
    if speed == 1.0 and real_origin_ms is None and sim_origin_ms is None:
        return SystemClock()
    return ScaledClock(speed, real_origin_ms, sim_origin_ms)
