"""How hard the connector tries before it reports a failure, and how long it waits in between."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the connector tries before it reports a failure."""

    max_attempts: int = 5  # per idempotent call, for 5xx, timeouts and broken connections
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_throttled: int = 20  # 429 answers tolerated per call
    retry_after_cap_s: float = 60.0
    jitter: float = 0.25  # up to this fraction is added to every wait

    def backoff(self, attempt: int) -> float:
        """The exponential wait before attempt `attempt + 1`, with jitter."""
        base = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        return base * (1 + self.jitter * random.random())

    def retry_after(self, response: httpx.Response, attempt: int) -> float:
        """The wait SEPM asked for (capped), or the back-off when it named none."""
        raw = response.headers.get("Retry-After", "").strip()
        try:
            wait = min(float(raw), self.retry_after_cap_s)
        except ValueError:
            # Absent, or an HTTP date we do not trust clocks enough to use.
            return self.backoff(attempt)
        # Jitter keeps many workers throttled together from coming back in lockstep.
        return max(wait, 0.0) + self.jitter * random.random() * max(wait, 1.0)
