"""How a commit with outbox rows wakes the relays: in this process directly, in the others by
PostgreSQL's LISTEN/NOTIFY on the service's channel."""

from __future__ import annotations

import asyncio
import uuid


class OutboxSignal:
    """Wakes the relay in this process when a transaction with outbox rows commits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        # The NOTIFY payload of this process's commits: its relay, woken already by notify(),
        # ignores them on LISTEN (other replicas' relays still wake on them).
        self.token = uuid.uuid4().hex

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._event.clear()


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a service's outbox."""
    return f"certrotate_outbox_{schema}"
