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


class Subscription(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, timeout: float) -> dict[tuple[str, int], list[IncomingRecord]]:
        """The next records, grouped by (topic, partition), each group in offset order."""
        ...

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        """Mark everything up to and including these records as done."""
        ...


class Transport(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Return only once every record is durably accepted, in order per key."""
        ...

    def subscribe(self, group: str, topics: list[str]) -> Subscription: ...
