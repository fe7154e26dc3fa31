"""Reading and writing watches. Every state change is conditional on the watch still being open
(and, for the scanner, still leased to this replica), so a cancel and a close never both win."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from client_monitor.adapters.orm import pending_clients, watches

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


async def claim_open_watches(
    session: AsyncSession, *, owner: str, now: datetime, until: datetime
) -> list[WatchRecord]:
    """Lease every open watch that nobody else holds; returns all open watches this replica holds."""
    claimable = and_(
        watches.c.status == OPEN,
        or_(watches.c.owner.is_(None), watches.c.owner == owner, watches.c.lease_until < now),
    )
    await session.execute(update(watches).where(claimable).values(owner=owner, lease_until=until))
    rows = await session.execute(
        select(watches).where(watches.c.status == OPEN, watches.c.owner == owner)
    )
    return [_record(r) for r in rows]


async def release_watches(session: AsyncSession, *, owner: str) -> None:
    await session.execute(
        update(watches).where(watches.c.owner == owner).values(owner=None, lease_until=None)
    )


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


async def save_pending_clients(
    session: AsyncSession, watch_id: str, rows: Iterable[dict[str, Any]], *, chunk: int = 5000
) -> None:
    batch: list[dict[str, Any]] = []
    for position, row in enumerate(rows):
        batch.append({"watch_id": watch_id, "position": position, **row})
        if len(batch) >= chunk:
            await session.execute(insert(pending_clients), batch)
            batch = []
    if batch:
        await session.execute(insert(pending_clients), batch)


async def stream_pending_clients(
    engine: AsyncEngine, watch_id: str, *, status: str, limit: int | None
) -> AsyncIterator[dict[str, Any]]:
    """The clients saved when the watch closed, filtered like the live lists."""
    query = select(pending_clients).where(pending_clients.c.watch_id == watch_id)
    if status == "stale":
        query = query.where(pending_clients.c.stale.is_(True))
    elif status == "straggler":
        query = query.where(pending_clients.c.stale.is_(False))
    query = query.order_by(pending_clients.c.position)
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=2000))
        async for row in result:
            yield dict(row._mapping)
