"""Reading and writing watches (their client lists are in stored_clients.py). Every state change is conditional on the watch still being open
(and, for the scanner, still leased to this replica), so a cancel and a close never both win."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from certrotate_shared.envelope import Envelope
from certrotate_shared.leases import Lease, LeasedTable
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.work import Work
from client_monitor.adapters.orm import watches

OPEN = "open"


@dataclass(frozen=True)
class WatchRecord:
    watch_id: str
    saga_id: str
    site: str
    status: str
    deadline: datetime
    envelope: Envelope
    counts: dict[str, Any] | None
    outcome_type: str | None
    outcome: dict[str, Any] | None
    opened_at: datetime
    closed_at: datetime | None
    # Where the replica that scans it answers (open watches only).
    owner_url: str | None = None

    @property
    def command(self) -> AwaitPolicyPropagation:
        message = self.envelope.message()
        assert isinstance(message, AwaitPolicyPropagation)
        return message


def _record(row: Any) -> WatchRecord:
    return WatchRecord(
        watch_id=row.watch_id,
        saga_id=row.saga_id,
        site=row.site,
        status=row.status,
        deadline=row.deadline,
        envelope=Envelope.model_validate_json(row.command),
        counts=row.counts,
        outcome_type=row.outcome_type,
        outcome=row.outcome,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        owner_url=row.owner_url if row.status == OPEN else None,
    )


async def add_watch(session: AsyncSession, envelope: Envelope, *, now: datetime) -> None:
    command = envelope.message()
    assert isinstance(command, AwaitPolicyPropagation)
    await session.execute(
        insert(watches).values(
            watch_id=command.watch_id,
            saga_id=envelope.saga_id,
            site=command.site.site,
            status=OPEN,
            deadline=command.deadline,
            command=envelope.model_dump_json(),
            opened_at=now,
        )
    )


async def get_watch(session: AsyncSession | AsyncEngine, watch_id: str) -> WatchRecord | None:
    query = select(watches).where(watches.c.watch_id == watch_id)
    if isinstance(session, AsyncEngine):
        async with session.connect() as conn:
            row = (await conn.execute(query)).first()
    else:
        row = (await session.execute(query)).first()
    return None if row is None else _record(row)


async def cancel_watch(session: AsyncSession, watch_id: str, *, now: datetime) -> bool:
    result = await session.execute(
        update(watches)
        .where(watches.c.watch_id == watch_id, watches.c.status == OPEN)
        .values(status="cancelled", closed_at=now, owner=None, lease_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


WATCHES = LeasedTable(watches, "watch_id", open=lambda: watches.c.status == OPEN)


class WatchTable:
    """The watches table as the shared work runner reads it (certrotate_shared.work)."""

    def __init__(self, url: Callable[[], str | None]) -> None:
        self._url = url  # where this replica's API answers, recorded with its holds

    async def due(
        self, session: AsyncSession, lease: Lease, *, now: datetime, limit: int
    ) -> list[Work]:
        """Open watches nobody else holds (a watch runs until it closes)."""
        rows = await session.execute(
            select(watches)
            .where(WATCHES.open(), lease.available())
            .order_by(watches.c.opened_at)
            .limit(limit)
        )
        return [Work(r.watch_id, Envelope.model_validate_json(r.command), _record(r)) for r in rows]

    def taken(self, now: datetime) -> dict[str, Any]:
        return {"owner_url": self._url()}

    def kept(self) -> dict[str, Any]:
        return {"owner_url": self._url()}

    def again(self, at: datetime) -> dict[str, Any]:
        return {}


def _held(watch_id: str, owner: str) -> Any:
    return and_(watches.c.watch_id == watch_id, watches.c.status == OPEN, watches.c.owner == owner)


async def save_counts(
    session: AsyncSession, watch_id: str, *, owner: str, counts: dict[str, Any]
) -> bool:
    result = await session.execute(
        update(watches).where(_held(watch_id, owner)).values(counts=counts)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def close_watch(
    session: AsyncSession,
    watch_id: str,
    *,
    owner: str,
    status: str,
    outcome_type: str,
    outcome: dict[str, Any],
    counts: dict[str, Any] | None,
    now: datetime,
) -> bool:
    result = await session.execute(
        update(watches)
        .where(_held(watch_id, owner))
        .values(
            status=status,
            outcome_type=outcome_type,
            outcome=outcome,
            counts=counts,
            closed_at=now,
            owner=None,
            lease_until=None,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
