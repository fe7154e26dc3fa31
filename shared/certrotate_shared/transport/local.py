"""The in-process transport for embedded mode: a durable log in one SQLite file.

It behaves like a small Kafka (partitions by key, consumer groups, committed offsets), so a
process restart loses nothing and the same consumer code runs in both modes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path

from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord

PARTITIONS = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL,
    PRIMARY KEY (topic, partition, offset));
CREATE TABLE IF NOT EXISTS committed (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition));
"""


def partition_for(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS


class LocalTransport:
    """All subscribers share this one object inside the process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.version = 0  # bumped on every publish, so a poller never misses a wake-up

    async def start(self) -> None:
        if self._db is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Small statements on a local file: running them on the loop costs less than a thread hop.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    async def stop(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "transport not started"
        return self._db

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        async with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                for r in records:
                    partition = partition_for(r.key)
                    (next_offset,) = db.execute(
                        "SELECT COALESCE(MAX(offset) + 1, 0) FROM records"
                        " WHERE topic = ? AND partition = ?",
                        (r.topic, partition),
                    ).fetchone()
                    headers = json.dumps([[k, v.decode("latin-1")] for k, v in r.headers])
                    db.execute(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                        (r.topic, partition, next_offset, r.key, r.value, headers),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    def subscribe(self, group: str, topics: list[str]) -> LocalSubscription:
        return LocalSubscription(self, group, topics)

    async def wait_for_change(self, seen_version: int, timeout: float) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version != seen_version), timeout
                )
            except TimeoutError:
                pass


class LocalSubscription:
    def __init__(self, transport: LocalTransport, group: str, topics: list[str]) -> None:
        self._t = transport
        self._group = group
        self._topics = topics
        self._positions: dict[tuple[str, int], int] = {}
        self._paused: set[tuple[str, int]] = set()

    async def start(self) -> None:
        await self._t.start()
        for topic in self._topics:
            for partition in range(PARTITIONS):
                row = self._t.db.execute(
                    "SELECT next_offset FROM committed WHERE grp = ? AND topic = ? AND partition = ?",
                    (self._group, topic, partition),
                ).fetchone()
                self._positions[(topic, partition)] = row[0] if row else 0

    async def stop(self) -> None:
        self._positions.clear()
        self._paused.clear()

    def _fetch(self) -> dict[tuple[str, int], list[IncomingRecord]]:
        batches: dict[tuple[str, int], list[IncomingRecord]] = {}
        for (topic, partition), position in self._positions.items():
            if (topic, partition) in self._paused:
                continue
            rows = self._t.db.execute(
                "SELECT offset, key, value, headers FROM records WHERE topic = ? AND partition = ?"
                " AND offset >= ? ORDER BY offset LIMIT 200",
                (topic, partition, position),
            ).fetchall()
            if rows:
                batches[(topic, partition)] = [
                    IncomingRecord(
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        key=key,
                        value=bytes(value),
                        headers=[(k, v.encode("latin-1")) for k, v in json.loads(headers)],
                    )
                    for offset, key, value, headers in rows
                ]
                self._positions[(topic, partition)] = rows[-1][0] + 1
        return batches

    async def poll(self, timeout: float) -> dict[tuple[str, int], list[IncomingRecord]]:
        seen = self._t.version
        batches = self._fetch()
        if not batches:
            await self._t.wait_for_change(seen, timeout)
            batches = self._fetch()
        return batches

    async def commit(self, last: dict[tuple[str, int], IncomingRecord]) -> None:
        for (topic, partition), record in last.items():
            self._t.db.execute(
                "INSERT INTO committed VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition)"
                " DO UPDATE SET next_offset = excluded.next_offset",
                (self._group, topic, partition, record.offset + 1),
            )

    async def rewind(self, topic: str, partition: int, offset: int) -> None:
        if (topic, partition) in self._positions:
            self._positions[(topic, partition)] = offset

    def pause(self, topic: str, partition: int) -> None:
        self._paused.add((topic, partition))

    def resume(self, topic: str, partition: int) -> None:
        self._paused.discard((topic, partition))

    async def lag(self) -> dict[tuple[str, int], int]:
        lags: dict[tuple[str, int], int] = {}
        for topic, partition in self._positions:
            # MAX on the primary key's prefix: one index probe per partition.
            (end,) = self._t.db.execute(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ? AND partition = ?",
                (topic, partition),
            ).fetchone()
            row = self._t.db.execute(
                "SELECT next_offset FROM committed WHERE grp = ? AND topic = ? AND partition = ?",
                (self._group, topic, partition),
            ).fetchone()
            if end:
                lags[(topic, partition)] = max(end - (row[0] if row else 0), 0)
        return lags
