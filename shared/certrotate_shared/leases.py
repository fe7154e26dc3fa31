"""Leases on long-running work, shared by every worker service.

A replica holds a row of its work table (a certificate job, a replication operation, a
propagation watch) while it works on it, renews the hold while it works, and lets it go when it
stops. A replica that was killed cannot let go: once its hold has run out, any replica takes the
row over. The hold is two columns of the work's own row (`owner`, `lease_until`), so it is as
durable as the work itself, and every take is a conditional UPDATE, so two replicas never both
win a row (PostgreSQL or SQLite alike).

Leases run on wall-clock time even when the service's clock is accelerated (the twin, the
demo): a hold is about a process being alive, which only real seconds measure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.clock import Clock, SystemClock


def replica_name(instance_id: str = "") -> str:
    """This replica's name in the leases it holds: the setting, else host, process and a
    random suffix (a restarted process must not pass for the one that held the lease)."""
    return instance_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LeasedTable:
    """Where a kind of work keeps its holds: its table (with `owner` and `lease_until`
    columns), its key column, and which rows are still to be worked on."""

    table: Table
    key: str
    open: Callable[[], ColumnElement[bool]] = true


class Lease:
    """One replica's holds on one work table."""

    def __init__(
        self, work: LeasedTable, *, owner: str, seconds: float, clock: Clock | None = None
    ) -> None:
        self.work = work
        self.owner = owner
        self.seconds = seconds
        self.clock = clock or SystemClock()
        table = work.table
        self._key = table.c[work.key]
        self._owner = table.c.owner
        self._until = table.c.lease_until

    def until(self) -> datetime:
        """When a hold taken or renewed now runs out."""
        return self.clock.now() + timedelta(seconds=self.seconds)

    def free(self) -> ColumnElement[bool]:
        """Rows nobody holds: never taken, let go, or held by a replica whose hold ran out."""
        return or_(self._owner.is_(None), self._until.is_(None), self._until < self.clock.now())

    def available(self) -> ColumnElement[bool]:
        """Rows this replica may take: free ones, and its own (a restart under a fixed
        instance_id picks its work up at once instead of after the lease)."""
        return or_(self.free(), self._owner == self.owner)

    def held(self, key: str) -> ColumnElement[bool]:
        """The row, if this replica still holds it: the guard on every write of its work."""
        return and_(self._key == key, self._owner == self.owner, self.work.open())

    async def take(self, session: AsyncSession, key: str, **values: Any) -> bool:
        """Take one open row if it is free or already ours (a renewal); False if another
        replica holds it. `values` are written with the hold (the holder's address...)."""
        result: Any = await session.execute(
            update(self.work.table)
            .where(
                self._key == key,
                self.work.open(),
                self.available(),
            )
            .values(owner=self.owner, lease_until=self.until(), **values)
        )
        return bool(result.rowcount == 1)

    async def take_all(self, session: AsyncSession, **values: Any) -> list[str]:
        """Take every open row that is free, renew the ones already ours; returns all held."""
        await session.execute(
            update(self.work.table)
            .where(self.work.open(), self.available())
            .values(owner=self.owner, lease_until=self.until(), **values)
        )
        return await self.holding(session)

    async def holding(self, session: AsyncSession) -> list[str]:
        """The open rows this replica holds."""
        rows = await session.execute(
            select(self._key).where(self._owner == self.owner, self.work.open())
        )
        return [row[0] for row in rows]

    async def renew(self, session: AsyncSession, keys: Collection[str], **values: Any) -> set[str]:
        """Extend the holds on `keys`; returns those still ours (a row another replica took
        over while this one stalled, or that closed, is not, and its work must stop)."""
        if not keys:
            return set()
        await session.execute(
            update(self.work.table)
            .where(self._key.in_(list(keys)), self._owner == self.owner, self.work.open())
            .values(lease_until=self.until(), **values)
        )
        rows = await session.execute(
            select(self._key).where(
                self._key.in_(list(keys)), self._owner == self.owner, self.work.open()
            )
        )
        return {row[0] for row in rows}

    async def release(self, session: AsyncSession, key: str, **values: Any) -> bool:
        """Let one row go (with `values`: when to look at it again...), if still ours."""
        result: Any = await session.execute(
            update(self.work.table)
            .where(self._key == key, self._owner == self.owner)
            .values(owner=None, lease_until=None, **values)
        )
        return bool(result.rowcount == 1)

    async def release_all(self, session: AsyncSession, **values: Any) -> None:
        """Hand every hold over at once (a clean stop), instead of after they run out."""
        await session.execute(
            update(self.work.table)
            .where(self._owner == self.owner)
            .values(owner=None, lease_until=None, **values)
        )
