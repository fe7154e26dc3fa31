"""Failed authentications per client address: once `limit` tokens from an address failed within
`window` seconds, the address is refused (429, Retry-After) until fewer than `limit` of them
are left in the window, so a token cannot be guessed at the speed of the API.

The count is shared by every replica on one database (adapters/auth_failure_rows.py): each
failure is recorded there in one statement, whose answer (the address's latest failures, from
every replica) tells this replica whether, and until when, to refuse the address. A refusal is
decided in memory, without a statement, and so is every request that authenticates fine.

The bound, stated in the settings' description: with N replicas, an address gets at most
`limit + N - 1` attempts per window, not `N x limit`. Only a failure reads the shared count, so
a replica that has not failed for the address since the count reached the limit lets one more
attempt through; it fails and blocks that replica too. (Requests from one address already in
flight together are each checked before any of them fails, with or without replicas.) The
instants are the replicas' own real-time clocks, which NTP keeps within far less than a window.

When the database cannot record a failure, the 401 is answered anyway and this replica counts
the failure on its own (logged: the limit is then per replica until the database answers).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# Addresses tracked at most: a flood from many addresses must not grow memory without bound.
MAX_ADDRESSES = 100_000

# Records a failure of an address at an instant where every replica sees it; answers the
# instants of the address's earlier failures within the window, newest first, at most `limit`.
RecordFailure = Callable[[str, float], Awaitable[list[float]]]


@dataclass
class _Address:
    # This replica's own failures within the window: the count when the database cannot answer.
    failures: deque[float] = field(default_factory=deque)
    # Refused until then (epoch seconds), as the database's last answer had it.
    blocked_until: float = 0.0


class FailedAuthentications:
    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds until `address` may try again, or None if it may now (no I/O)."""
        known = self._addresses.get(address)
        if known is None:
            return None
        until = max(known.blocked_until, self._until(self._recent(known, now)))
        if until <= now:
            return None
        return max(1, math.ceil(until - now))

    async def failed(self, address: str, now: float, record: RecordFailure | None) -> None:
        """A token from `address` failed at `now`: count it, where every replica sees it."""
        known = self._addresses.setdefault(address, _Address())
        self._addresses.move_to_end(address)
        while len(self._addresses) > MAX_ADDRESSES:
            self._addresses.popitem(last=False)
        self._recent(known, now).append(now)
        if record is None:
            return
        try:
            earlier = await record(address, now)
        except (SQLAlchemyError, OSError) as exc:
            # The caller still answers 401; the token is never part of what is recorded.
            log.warning(
                "a failed authentication from %s was not recorded for the other replicas "
                "(%s); this replica counts it on its own",
                address, type(exc).__name__,
            )  # fmt: skip
            return
        known.blocked_until = self._until([now, *earlier])

    def _until(self, failures: Iterable[float]) -> float:
        """When fewer than `limit` of these failures are left in the window (0: already)."""
        instants = sorted(failures, reverse=True)
        if len(instants) < self.limit:
            return 0.0
        return instants[self.limit - 1] + self.window

    def _recent(self, known: _Address, now: float) -> deque[float]:
        failures = known.failures
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
