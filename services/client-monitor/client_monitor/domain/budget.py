"""SEPM's call budget: a real SEPM answers 429 past a configurable rate (about 50 calls a
minute in one known configuration). A watch spaces its calls to stay under the budget rather
than spend it and be throttled: a token bucket, time passed in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallBudget:
    """At most `per_minute` calls a minute sustained, in bursts of at most `burst` calls."""

    per_minute: float
    burst: float = 1.0
    _tokens: float | None = field(default=None, init=False)  # None: no call made yet
    _at: float = field(default=0.0, init=False)
    calls: int = field(default=0, init=False)

    def wait(self, now: float) -> float:
        """Take one call's token: seconds to wait before making the call (0: at once)."""
        tokens = self.burst if self._tokens is None else self._tokens
        rate = self.per_minute / 60.0
        self._tokens = min(self.burst, tokens + max(0.0, now - self._at) * rate)
        self._at = now
        self._tokens -= 1.0
        self.calls += 1
        return 0.0 if self._tokens >= 0 else -self._tokens / rate
