"""The outbox relay: publishes committed messages in order, woken on commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared import metrics
from certrotate_shared.db import asyncpg_dsn, is_postgres
from certrotate_shared.envelope import utcnow
from certrotate_shared.outbox_signal import HandedRow, OutboxSignal, notify_channel
from certrotate_shared.tables import outbox
from certrotate_shared.transport.base import OutgoingRecord, Transport
from certrotate_shared.utc_timestamps import as_utc

log = logging.getLogger(__name__)

# PostgreSQL: the relay drains on a connection of its own that holds the drain lock for its
# lifetime (one replica drains at a time, so the order holds). What this process commits is
# handed over by its units of work (outbox_signal): published as written, without a read. The
# rest (other replicas' rows, leftovers, commits whose outcome is unknown) is read from the
# table. Rows are published and only then deleted: a crash in between sends them again, and
# the receiving inboxes drop the copies. The statements run outside a transaction: no
# BEGIN/COMMIT round trips.
_PG_LOCK = "SELECT pg_try_advisory_lock(hashtext($1))"
_PG_NEXT = "SELECT id, topic, key, value, created_at FROM outbox ORDER BY id LIMIT $1"
_PG_WAKE = "SELECT pg_notify($1, '')"
# Only the rows we sent: a lower id may commit later and must not be lost.
_PG_SENT = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


class OutboxRelay:
    """Drain the outbox to the transport; one replica at a time drains, so order holds."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        database_url: str,
        schema: str,
        transport: Transport,
        signal: OutboxSignal,
        service: str = "",
        safety_poll: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self._engine = engine
        self._url = database_url
        self._schema = schema
        self._transport = transport
        self._signal = signal
        self._safety_poll = safety_poll
        self._batch = batch_size
        self._postgres = is_postgres(database_url)
        self._stopping = False
        # PostgreSQL: the connection that drains, and whether it holds the drain lock.
        self._conn: asyncpg.Connection | None = None
        self._locked = False
        # Ids a read published while hand-offs were outstanding (see _publish_handed).
        self._read_ids: set[int] = set()
        self.published = 0
        # Of those, published from a hand-off, without reading them back.
        self.handed_over = 0
        self._published = metrics.OUTBOX_PUBLISHED.labels(service or schema)
        self._lag = metrics.RELAY_LAG.labels(service or schema)

    def stop(self) -> None:
        """Finish the batch in hand, then return from run()."""
        self._stopping = True
        self._signal.notify()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen()) if self._postgres else None
        read = True  # what an earlier run (or another replica) left behind
        try:
            while not self._stopping:
                try:
                    await self.drain(read=read)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox relay failed; retrying")
                    await asyncio.sleep(1.0)
                # Woken by a hand-off, a read request or a NOTIFY; on the safety poll, read.
                read = not await self._signal.wait(self._safety_poll)
        finally:
            if listener:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await self._drop_connection()

    async def drain(self, *, read: bool = True) -> None:
        """Publish what this process's commits handed over, then (when `read`, or when asked
        to) everything else the outbox holds, batch by batch."""
        if not self._postgres:
            while await self._drain_portable() == self._batch and not self._stopping:
                pass
            return
        try:
            if not await self._hold_lock():
                # What this process committed while its relay drained went without a NOTIFY:
                # wake the one that drains now to read it (the rest woke it already).
                if self._signal.forget():
                    assert self._conn is not None
                    await self._conn.execute(_PG_WAKE, notify_channel(self._schema))
                return
            handed = self._signal.take()
            if handed:
                await self._publish_handed(handed)
            if self._signal.read_requested() or read:
                while await self._read_batch() == self._batch and not self._stopping:
                    pass
            if not self._signal.outstanding():
                self._read_ids.clear()
        except BaseException:
            self._signal.notify()  # what was handed over is in the table: read it next time
            await self._drop_connection()  # and the lock: another replica may take over
            raise

    async def _drain_portable(self) -> int:
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(select(outbox).order_by(outbox.c.id).limit(self._batch))
            ).all()
            if not rows:
                return 0
            await self._transport.publish(
                [OutgoingRecord(topic=r.topic, key=r.key, value=bytes(r.value)) for r in rows]
            )
            # Only the rows we sent: a lower id may commit later and must not be lost.
            await conn.execute(delete(outbox).where(outbox.c.id.in_([r.id for r in rows])))
        self._count([r.created_at for r in rows])
        return len(rows)

    async def _hold_lock(self) -> bool:
        """Whether this relay holds the drain lock (taken on its own connection if free)."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                asyncpg_dsn(self._url),
                server_settings={"search_path": self._schema, "synchronous_commit": "on"},
            )
            self._locked = False
        if not self._locked:
            self._locked = bool(await self._conn.fetchval(_PG_LOCK, f"{self._schema}.outbox"))
        self._signal.draining = self._locked
        return self._locked

    async def _publish_handed(self, handed: list[HandedRow]) -> None:
        """Rows this process committed: published as they were written, then deleted. A read
        may have published some of them already (committed, not yet handed over)."""
        rows = [r for r in handed if r.id not in self._read_ids]
        self._read_ids.difference_update(r.id for r in handed)
        if not rows:
            return
        assert self._conn is not None
        await self._transport.publish(
            [OutgoingRecord(topic=r.topic, key=r.key, value=r.value) for r in rows]
        )
        await self._conn.execute(_PG_SENT, [r.id for r in rows])
        self.handed_over += len(rows)
        self._count([r.created_at for r in rows])

    async def _read_batch(self) -> int:
        assert self._conn is not None
        rows = await self._conn.fetch(_PG_NEXT, self._batch)
        if not rows:
            return 0
        await self._transport.publish(
            [OutgoingRecord(topic=r["topic"], key=r["key"], value=r["value"]) for r in rows]
        )
        ids = [r["id"] for r in rows]
        await self._conn.execute(_PG_SENT, ids)
        if self._signal.outstanding():
            # Some may still be handed over (committed before this read, settled after it).
            # Bounded: forgetting them costs at worst a copy, which the inboxes drop.
            if len(self._read_ids) > 10 * self._batch:
                self._read_ids.clear()
            self._read_ids.update(ids)
        self._count([r["created_at"] for r in rows])
        return len(rows)

    def _count(self, created_at: list[datetime]) -> None:
        self.published += len(created_at)
        self._published.inc(len(created_at))
        sent_at = utcnow()
        for created in created_at:
            self._lag.observe(max((sent_at - as_utc(created)).total_seconds(), 0.0))

    async def _drop_connection(self) -> None:
        conn, self._conn, self._locked = self._conn, None, False
        self._signal.draining = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def _listen(self) -> None:
        """LISTEN for commits by any replica of this service; reconnect when the link drops."""
        channel = notify_channel(self._schema)

        def wake(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload != self._signal.token:  # our own commits woke us already
                self._signal.notify()

        while True:
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self._url))
                try:
                    await conn.add_listener(channel, wake)
                    while not conn.is_closed():
                        await asyncio.sleep(5)
                finally:
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox LISTEN connection lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(1.0)
