"""Retry delays: exponential back-off with jitter, reproducible from the idempotency key.

The jitter comes from a hash rather than a random generator so that a decision stays a pure
function of (state, input, now): replaying it gives the same timer.
"""

from __future__ import annotations

import hashlib

from orchestrator.domain.state import RetryPolicy


def retry_delay(policy: RetryPolicy, attempt: int, key: str) -> float:
    """Seconds to wait before attempt `attempt + 1`, between half and all of the capped delay."""
    capped = min(policy.max_seconds, policy.base_seconds * 2 ** max(0, attempt - 1))
    digest = hashlib.sha256(key.encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
    return capped * (0.5 + 0.5 * fraction)
