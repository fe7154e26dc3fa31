"""The in-process transport for embedded mode: a durable log in one SQLite file.

It behaves like a small Kafka (partitions by key, consumer groups, committed offsets), so a
process restart loses nothing and the same consumer code runs in both modes. It is truncated
as it goes: a record every consumer group has committed past is deleted. A group is known to
the log from its first start (not its first commit), so one still reading its first batch
keeps what it has not handled; a group that never started reads from the oldest record left,
as a new Kafka group with `auto_offset_reset="earliest"` does.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord

_T = TypeVar("_T")

PARTITIONS = 4
# Commits between two truncations: each is one indexed DELETE per partition.
TRUNCATE_EVERY = 256

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

    def __init__(self, path: str, *, truncate_every: int = TRUNCATE_EVERY) -> None:
        self.path = path
        self._truncate_every = truncate_every
        self._commits = 0
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

    async def truncate(self) -> int:
        """Delete the records every consumer group has committed past; how many."""
        return self._in_transaction(self._truncate)

    def _truncate(self, db: sqlite3.Connection) -> int:
        needed = db.execute(
            "SELECT topic, partition, MIN(next_offset) FROM committed GROUP BY topic, partition"
        ).fetchall()
        deleted = 0
        for topic, partition, oldest_needed in needed:
            # The newest record stays: the next one published takes its offset + 1.
            deleted += db.execute(
                "DELETE FROM records WHERE topic = ? AND partition = ? AND offset < ?"
                " AND offset < (SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?)",
                (topic, partition, oldest_needed, topic, partition),
            ).rowcount
        return deleted

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % self._truncate_every == 0:
            self._in_transaction(self._truncate)

    def _join(self, group: str, topic: str, partition: int) -> int:
        """The group's committed offset; a group new to the log is recorded at the oldest
        record left, so that truncation keeps what it has not handled yet."""

        def join(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT next_offset FROM committed WHERE grp = ? AND topic = ? AND partition = ?",
                (group, topic, partition),
            ).fetchone()
            if row:
                return int(row[0])
            (oldest,) = db.execute(
                "SELECT COALESCE(MIN(offset), 0) FROM records WHERE topic = ? AND partition = ?",
                (topic, partition),
            ).fetchone()
            db.execute(
                "INSERT INTO committed VALUES (?, ?, ?, ?)", (group, topic, partition, oldest)
            )
            return int(oldest)

        return self._in_transaction(join)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

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
                self._positions[(topic, partition)] = self._t._join(self._group, topic, partition)

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
        self._t._committed()

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
