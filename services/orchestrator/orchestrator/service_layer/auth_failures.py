"""Failed authentications per client address: after `limit` failures within `window` seconds
the address is refused (429, Retry-After) until the oldest of them leaves the window, so a
token cannot be guessed at the speed of the API. Per process: each replica counts its own."""

from __future__ import annotations

import math
from collections import OrderedDict, deque

# Addresses tracked at most: a flood from many addresses must not grow memory without bound.
MAX_ADDRESSES = 100_000


class FailedAuthentications:
    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds until `address` may try again, or None if it may now."""
        failures = self._recent(address, now)
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str, now: float) -> None:
        self._recent(address, now).append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
