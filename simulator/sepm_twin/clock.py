"""The twin's accelerated clock: simulated epoch milliseconds that run `speed` times real time."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Simulated time = start + speed × real elapsed + whatever tests skipped ahead."""

    def __init__(
        self,
        *,
        start_ms: int,
        speed: float,
        real_now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._real_now = real_now
        self._anchor_real = real_now()
        self._anchor_sim_ms = float(start_ms)
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        elapsed = self._real_now() - self._anchor_real
        return int(self._anchor_sim_ms + elapsed * self._speed * 1000.0)

    def advance(self, seconds: float) -> int:
        """Skip simulated time forward; returns the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._rebase()
        self._anchor_sim_ms += seconds * 1000.0
        return self.now_ms()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        # Re-anchor first so that the time already elapsed keeps the old speed.
        self._rebase()
        self._speed = float(speed)

    def _rebase(self) -> None:
        now_real = self._real_now()
        self._anchor_sim_ms += (now_real - self._anchor_real) * self._speed * 1000.0
        self._anchor_real = now_real
