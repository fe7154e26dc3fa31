"""Who may call a site's REST API, and how often: bearer tokens and SEPM's call-rate limit.

Both run on real time, not the simulated clock: the callers are real programs.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Session:
    token: str
    refresh_token: str
    expires_at: float
    admin_id: str


class TokenStore:
    def __init__(self, *, ttl_s: int, now: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._now = now
        self._sessions: dict[str, Session] = {}

    def issue(self, admin_id: str) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            expires_at=self._now() + self.ttl_s,
            admin_id=admin_id,
        )
        self._sessions[session.token] = session
        return session

    def valid(self, token: str) -> bool:
        session = self._sessions.get(token)
        if session is None:
            return False
        if session.expires_at <= self._now():
            del self._sessions[token]
            return False
        return True

    def revoke(self, token: str) -> None:
        self._sessions.pop(token, None)

    def expire_all(self) -> None:
        self._sessions.clear()


class RateLimit:
    """A token bucket: `calls_per_minute` sustained, bursts of the same size."""

    def __init__(
        self, calls_per_minute: float | None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._now = now
        self.set(calls_per_minute)

    def set(self, calls_per_minute: float | None) -> None:
        self.calls_per_minute = calls_per_minute
        self._tokens = float(calls_per_minute or 0)
        self._at = self._now()

    def take(self) -> int | None:
        """None if the call may proceed, else the seconds to wait (Retry-After)."""
        if not self.calls_per_minute:
            return None
        rate = self.calls_per_minute / 60.0
        now = self._now()
        self._tokens = min(self.calls_per_minute, self._tokens + (now - self._at) * rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / rate))
