"""Reads and writes of the replication tables, on the caller's session (its transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import Envelope
from certrotate_shared.leases import Lease, LeasedTable
from certrotate_shared.operator_task_lifecycle import OperatorTasks
from certrotate_shared.work import Work
from replication.adapters.orm import broken_partnerships, operations, operator_tasks, partner_steps


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Operation:
    op_key: str
    saga_id: str
    kind: str
    site: str
    envelope: Envelope
    status: str


@dataclass(frozen=True)
class Step:
    partner: str
    position: int
    phase: str
    task_id: str | None
    baseline_run_ms: int | None
    baseline_success_ms: int | None
    status_code: str | None
    last_success_ms: int | None
    deadline: datetime | None
    polls: int


async def open_operation(
    session: AsyncSession,
    *,
    envelope: Envelope,
    kind: str,
    site: str,
    op_key: str,
    partners: list[str],
    now: datetime,
) -> None:
    """Record a command for the worker, with one pending step per listed partner."""
    await session.execute(
        insert(operations).values(
            op_key=op_key,
            saga_id=envelope.saga_id,
            kind=kind,
            site=site,
            command=envelope.model_dump_json(),
            status="active",
            next_at=None,
            created_at=now,
        )
    )
    unique = list(dict.fromkeys(partners))
    if unique:
        await session.execute(
            insert(partner_steps),
            [
                {
                    "op_key": op_key,
                    "partner": partner,
                    "position": position,
                    "phase": "pending",
                    "polls": 0,
                    "updated_at": now,
                }
                for position, partner in enumerate(unique)
            ],
        )


OPERATIONS = LeasedTable(operations, "op_key", open=lambda: operations.c.status == "active")


def _operation(row: Any) -> Operation:
    return Operation(
        op_key=row.op_key,
        saga_id=row.saga_id,
        kind=row.kind,
        site=row.site,
        envelope=Envelope.model_validate_json(row.command),
        status=row.status,
    )


async def get_operation(session: AsyncSession, op_key: str) -> Operation | None:
    row = (await session.execute(select(operations).where(operations.c.op_key == op_key))).first()
    return None if row is None else _operation(row)


class OperationTable:
    """The operations table as the shared work runner reads it (certrotate_shared.work)."""

    async def due(
        self, session: AsyncSession, lease: Lease, *, now: datetime, limit: int
    ) -> list[Work]:
        """Active operations whose time has come and that no live replica holds."""
        rows = await session.execute(
            select(operations)
            .where(
                OPERATIONS.open(),
                or_(operations.c.next_at.is_(None), operations.c.next_at <= now),
                lease.available(),
            )
            .order_by(operations.c.created_at)
            .limit(limit)
        )
        return [
            Work(r.op_key, Envelope.model_validate_json(r.command), _operation(r)) for r in rows
        ]

    def taken(self, now: datetime) -> dict[str, Any]:
        return {}

    def kept(self) -> dict[str, Any]:
        return {}

    def again(self, at: datetime) -> dict[str, Any]:
        return {"next_at": at}


async def wake(session: AsyncSession, op_key: str) -> None:
    """Make an operation due now (an operator confirmed a task of it)."""
    await session.execute(
        update(operations).where(operations.c.op_key == op_key).values(next_at=None)
    )


async def close_operation(
    session: AsyncSession, op_key: str, *, outcome_type: str, outcome: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        update(operations)
        .where(operations.c.op_key == op_key)
        .values(
            status="done",
            outcome_type=outcome_type,
            outcome=outcome,
            closed_at=now,
            owner=None,
            lease_until=None,
        )
    )


async def steps_of(session: AsyncSession, op_key: str) -> list[Step]:
    rows = await session.execute(
        select(partner_steps)
        .where(partner_steps.c.op_key == op_key)
        .order_by(partner_steps.c.position)
    )
    return [
        Step(
            partner=r.partner,
            position=r.position,
            phase=r.phase,
            task_id=r.task_id,
            baseline_run_ms=r.baseline_run_ms,
            baseline_success_ms=r.baseline_success_ms,
            status_code=r.status_code,
            last_success_ms=r.last_success_ms,
            deadline=utc(r.deadline),
            polls=r.polls,
        )
        for r in rows
    ]


async def update_step(
    session: AsyncSession, op_key: str, partner: str, *, now: datetime, **values: Any
) -> None:
    await session.execute(
        update(partner_steps)
        .where(partner_steps.c.op_key == op_key, partner_steps.c.partner == partner)
        .values(updated_at=now, **values)
    )


async def partners_broken_by(session: AsyncSession, *, saga_id: str, site: str) -> set[str]:
    """The partnerships of this site that this saga set out to delete (or deleted)."""
    rows = await session.execute(
        select(broken_partnerships.c.partner).where(
            broken_partnerships.c.saga_id == saga_id,
            broken_partnerships.c.site == site,
            broken_partnerships.c.state.in_(("deleting", "broken")),
        )
    )
    return {r.partner for r in rows}


async def mark_partnership(
    session: AsyncSession,
    *,
    saga_id: str,
    site: str,
    partner: str,
    state: str,
    op_key: str,
    now: datetime,
) -> None:
    """Record where a partnership this saga breaks stands: deleting, broken or restored."""
    key = and_(
        broken_partnerships.c.saga_id == saga_id,
        broken_partnerships.c.site == site,
        broken_partnerships.c.partner == partner,
    )
    stamps: dict[str, Any] = {}
    if state == "broken":
        stamps["broken_at"] = now
    elif state == "restored":
        stamps["restored_at"] = now
    existing = (await session.execute(select(broken_partnerships.c.state).where(key))).first()
    if existing is None:
        if state == "restored":
            return  # we never broke it; nothing of ours to mark
        await session.execute(
            insert(broken_partnerships).values(
                saga_id=saga_id, site=site, partner=partner, state=state, op_key=op_key, **stamps
            )
        )
    else:
        await session.execute(update(broken_partnerships).where(key).values(state=state, **stamps))


async def forget_partnership(
    session: AsyncSession, *, saga_id: str, site: str, partner: str
) -> None:
    """The deletion we set out to do did not happen: the partnership is not ours to restore."""
    await session.execute(
        delete(broken_partnerships).where(
            broken_partnerships.c.saga_id == saga_id,
            broken_partnerships.c.site == site,
            broken_partnerships.c.partner == partner,
            broken_partnerships.c.state == "deleting",
        )
    )


async def broken_partnerships_of(
    session: AsyncSession, *, saga_id: str | None = None, site: str | None = None
) -> list[dict[str, Any]]:
    query = select(broken_partnerships).order_by(
        broken_partnerships.c.saga_id, broken_partnerships.c.site, broken_partnerships.c.partner
    )
    if saga_id is not None:
        query = query.where(broken_partnerships.c.saga_id == saga_id)
    if site is not None:
        query = query.where(broken_partnerships.c.site == site)
    return [
        {
            "saga_id": r.saga_id,
            "site": r.site,
            "partner": r.partner,
            "state": r.state,
            "broken_at": utc(r.broken_at),
            "restored_at": utc(r.restored_at),
        }
        for r in await session.execute(query)
    ]


TASKS = OperatorTasks(operator_tasks, service="replication", work_key="op_key")


async def operation_view(session: AsyncSession, op_key: str) -> dict[str, Any] | None:
    """An operation as the HTTP API shows it: status, each partner's phase, the outcome."""
    row = (await session.execute(select(operations).where(operations.c.op_key == op_key))).first()
    if row is None:
        return None
    return {
        "op_key": row.op_key,
        "saga_id": row.saga_id,
        "kind": row.kind,
        "site": row.site,
        "status": row.status,
        "created_at": utc(row.created_at),
        "closed_at": utc(row.closed_at),
        "outcome_type": row.outcome_type,
        "outcome": row.outcome,
        "partners": [
            {
                "partner": s.partner,
                "phase": s.phase,
                "status_code": s.status_code,
                "task_id": s.task_id,
                "deadline": s.deadline,
            }
            for s in await steps_of(session, op_key)
        ],
    }
