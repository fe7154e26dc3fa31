"""One transport interface, two implementations: Kafka and a durable in-process log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class IncomingRecord:
    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    # Why the transport could not read the record as ours (a key that is not UTF-8); such a
    # record is parked in the DLQ as it is.
    malformed: str | None = None


class Subscription(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, timeout: float) -> dict[tuple[str, int], list[IncomingRecord]]:
        """The next records, grouped by (topic, partition), each group in offset order."""
        ...

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        """Mark everything up to and including these records as done."""
        ...

    async def rewind(self, topic: str, partition: int, offset: int) -> None:
        """Deliver the partition again from `offset` (a record that must be tried again)."""
        ...

    def pause(self, topic: str, partition: int) -> None:
        """Deliver nothing more from the partition until resume()."""
        ...

    def resume(self, topic: str, partition: int) -> None: ...

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed, per assigned (topic, partition); cheap (no handling)."""
        ...


class Transport(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Return only once every record is durably accepted, in order per key."""
        ...

    def subscribe(self, group: str, topics: list[str]) -> Subscription: ...
