"""How a commit with outbox rows reaches the relays: in this process, the committed rows are
handed over directly (the relay publishes them without reading them back); in the other
replicas, PostgreSQL's LISTEN/NOTIFY on the service's channel wakes the relay to read them."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class HandedRow:
    """An outbox row as its transaction wrote it: what the relay would have read back."""

    id: int
    topic: str
    key: str
    value: bytes
    created_at: datetime


@dataclass
class Handoff:
    """The rows of one transaction of this process, taken before its commit and settled once
    the commit returned (rows) or failed (None: whether it committed is the table's to say)."""

    keys: frozenset[str]
    # Taken while this process's relay drained: the commit sends no NOTIFY (nobody to wake).
    quiet: bool = False
    settled: bool = False
    rows: list[HandedRow] | None = field(default=None, repr=False)


class OutboxSignal:
    """Between the units of work of this process and its relay.

    Order: a transaction reserves its place before it commits, naming the message keys (the
    sagas) it writes. A transaction that depends on another (the same saga's next step) can
    only commit after that one has, so it reserves after it. The relay publishes a settled
    hand-off unless an earlier one with a key in common is still committing: per key, the
    order the broker keeps (a partition's), and no saga waits on another's commit. Whatever it
    cannot know this way (a commit whose outcome is unknown, rows of another replica, places
    dropped for want of a relay) it reads from the table, in id order, as before hand-offs
    existed."""

    # Hand-offs kept for a relay that does not take them (it does not hold the drain lock, is
    # stuck on a broker outage, or this process runs none): beyond this, the oldest are
    # dropped and the relay reads the table instead, so memory stays bounded.
    max_handoffs = 1000

    def __init__(self) -> None:
        self._event = asyncio.Event()
        # The NOTIFY payload of this process's commits: its relay, woken already by notify(),
        # ignores them on LISTEN (other replicas' relays still wake on them).
        self.token = uuid.uuid4().hex
        self._handoffs: deque[Handoff] = deque()
        self._read = False
        # This process's relay holds the drain lock: no other relay needs waking by NOTIFY
        # (if it loses the lock, it wakes the next holder for what it was handed).
        self.draining = False

    def notify(self) -> None:
        """Rows may be in the table that nobody handed over: the relay reads it."""
        self._read = True
        self._event.set()

    def reserve(self, keys: frozenset[str]) -> Handoff:
        """Take a place for a transaction about to commit outbox rows with these keys."""
        if len(self._handoffs) >= self.max_handoffs:
            self._handoffs.popleft()
            self._read = True
        handoff = Handoff(keys, quiet=self.draining)
        self._handoffs.append(handoff)
        return handoff

    def settle(self, handoff: Handoff, rows: list[HandedRow] | None) -> None:
        """The transaction committed these rows, or (None) failed at or before its commit."""
        handoff.rows = rows
        handoff.settled = True
        if rows is None:
            self._read = True  # a failed COMMIT may still have committed
        self._event.set()

    def take(self) -> list[HandedRow]:
        """The rows of the settled hand-offs that no earlier unsettled one holds back (by a
        key in common), in reservation order."""
        rows: list[HandedRow] = []
        held: set[str] = set()
        kept: deque[Handoff] = deque()
        for handoff in self._handoffs:
            if handoff.settled and handoff.keys.isdisjoint(held):
                rows += handoff.rows or []
            else:
                kept.append(handoff)
                held |= handoff.keys  # and the keys of what waits behind it
        self._handoffs = kept
        return rows

    def outstanding(self) -> bool:
        """Hand-offs not taken yet (settled or still committing)."""
        return bool(self._handoffs)

    def forget(self) -> bool:
        """Another replica drains: it reads this process's rows after their NOTIFY. True if
        some went without one (taken while this process drained): that replica needs waking."""
        quiet = any(h.quiet for h in self._handoffs)
        self._handoffs.clear()
        return quiet

    def read_requested(self) -> bool:
        """Whether a read of the table was asked for since the last call."""
        requested, self._read = self._read, False
        return requested

    async def wait(self, timeout: float) -> bool:
        """Until woken or `timeout` seconds; False if nothing woke it."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a service's outbox."""
    return f"certrotate_outbox_{schema}"
