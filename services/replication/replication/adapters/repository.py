"""Reads and writes of the replication operations and their partner steps, on the caller's
session (its transaction); the partnerships a saga broke are in broken_partnerships.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import Envelope
from certrotate_shared.leases import Lease, LeasedTable
from certrotate_shared.operator_task_lifecycle import OperatorTasks
from certrotate_shared.utc_timestamps import as_utc
from certrotate_shared.work import Work
from replication.adapters.orm import operations, operator_tasks, partner_steps


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
            deadline=as_utc(r.deadline),
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
        "created_at": as_utc(row.created_at),
        "closed_at": as_utc(row.closed_at),
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
