"""Progress reporting: a completion forecast from the observed rate, and a throttle."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class RateTracker:
    """Samples of (time, clients reached) over the last few scans."""

    window: int = 12
    _samples: deque[tuple[datetime, int]] = field(default_factory=deque)

    def add(self, at: datetime, reached: int) -> None:
        self._samples.append((at, reached))
        while len(self._samples) > max(self.window, 2):
            self._samples.popleft()

    def per_second(self) -> float | None:
        """Clients reaching the target per second of clock time, or None if not measurable."""
        if len(self._samples) < 2:
            return None
        (t0, r0), (t1, r1) = self._samples[0], self._samples[-1]
        seconds = (t1 - t0).total_seconds()
        if seconds <= 0:
            return None
        return (r1 - r0) / seconds

    def forecast(self, *, remaining: int, now: datetime) -> datetime | None:
        """When the remaining clients will have reached at the observed rate; None if stuck."""
        if remaining <= 0:
            return now
        rate = self.per_second()
        if rate is None or rate <= 0:
            return None
        try:
            return now + timedelta(seconds=remaining / rate)
        except OverflowError:
            return None


@dataclass
class ProgressThrottle:
    """Report progress at most every `min_interval_s` of real time, and only on a change of at
    least `min_change_percent` points (the first report always goes out)."""

    min_interval_s: float = 5.0
    min_change_percent: float = 1.0
    _last_at: float | None = None
    _last_percent: float = 0.0

    def due(self, percent: float, real_now: float) -> bool:
        if self._last_at is None:
            return True
        return (
            real_now - self._last_at >= self.min_interval_s
            and abs(percent - self._last_percent) >= self.min_change_percent
        )

    def reported(self, percent: float, real_now: float) -> None:
        self._last_at = real_now
        self._last_percent = percent
