"""The jobs table: long-running commands, held with the shared lease so replicas share the work
and a killed replica's job is taken over when its lease runs out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certificates.adapters.orm import jobs, operator_tasks
from certrotate_shared.envelope import Envelope
from certrotate_shared.leases import Lease, LeasedTable
from certrotate_shared.messages.operator_tasks import ConfirmOperatorTask, confirmation_key_prefix
from certrotate_shared.operator_task_lifecycle import OPEN, OperatorTasks
from certrotate_shared.tables import command_outcomes
from certrotate_shared.work import Work

PENDING, RUNNING, AWAITING_OPERATOR, DONE = "pending", "running", "awaiting_operator", "done"


@dataclass(frozen=True)
class Job:
    job_id: str
    idempotency_key: str
    command_type: str
    saga_id: str
    envelope: Envelope
    status: str


def _envelope(row: Any) -> Envelope:
    return Envelope.model_validate_json(row.envelope)


def _job(row: Any) -> Job:
    return Job(
        job_id=row.job_id,
        idempotency_key=row.idempotency_key,
        command_type=row.command_type,
        saga_id=row.saga_id,
        envelope=_envelope(row),
        status=row.status,
    )


async def add_job(
    session: AsyncSession,
    envelope: Envelope,
    idempotency_key: str,
    now: datetime,
    *,
    rotation_purged: bool = False,
) -> None:
    """Queue a command; a second copy of the same idempotency key is ignored. A job queued by
    its rotation's purge says so (`rotation_purged`)."""
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(jobs).values(
        job_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        command_type=envelope.type,
        saga_id=envelope.saga_id,
        envelope=envelope.model_dump_json(),
        status=PENDING,
        owner=None,
        lease_until=None,
        next_at=None,
        attempts=0,
        created_at=now,
        updated_at=now,
        rotation_purged_at=now if rotation_purged else None,
    )
    await session.execute(stmt.on_conflict_do_nothing())


JOBS = LeasedTable(jobs, "job_id", open=lambda: jobs.c.status.in_([PENDING, RUNNING]))


class JobTable:
    """The jobs table as the shared work runner reads it (certrotate_shared.work)."""

    async def due(
        self, session: AsyncSession, lease: Lease, *, now: datetime, limit: int
    ) -> list[Work]:
        """Due jobs nobody holds, and those whose holder's lease ran out (a killed replica's).

        One saga's jobs run one at a time, in the order they arrived: a restore queued after
        a disable that a crashed worker never finished must not overtake it (it would find
        nothing to restore, and the late disable would then leave verification off).
        """
        earlier = jobs.alias("earlier")
        blocked = (
            select(earlier.c.job_id)
            .where(
                earlier.c.saga_id == jobs.c.saga_id,
                earlier.c.status != DONE,
                or_(
                    earlier.c.created_at < jobs.c.created_at,
                    and_(
                        earlier.c.created_at == jobs.c.created_at,
                        earlier.c.job_id < jobs.c.job_id,
                    ),
                ),
            )
            .exists()
        )
        runnable = and_(
            JOBS.open(),
            lease.available(),
            or_(jobs.c.next_at.is_(None), jobs.c.next_at <= now),
            ~blocked,
        )
        rows = await session.execute(
            select(jobs).where(runnable).order_by(jobs.c.created_at).limit(limit)
        )
        return [Work(row.job_id, _envelope(row), details=_job(row)) for row in rows]

    def taken(self, now: datetime) -> dict[str, Any]:
        return {
            "status": RUNNING,
            "next_at": None,
            "attempts": jobs.c.attempts + 1,
            "updated_at": now,
        }

    def kept(self) -> dict[str, Any]:
        return {}

    def again(self, at: datetime) -> dict[str, Any]:
        return {"status": PENDING, "next_at": at}


async def finish_job(session: AsyncSession, job_id: str, now: datetime) -> None:
    await session.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .values(status=DONE, owner=None, lease_until=None, updated_at=now)
    )


async def await_operator(session: AsyncSession, job_id: str, *, now: datetime) -> None:
    """The job waits for a person (TASKS holds what for); a confirmation resumes it."""
    await session.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .values(status=AWAITING_OPERATOR, owner=None, lease_until=None, updated_at=now)
    )


async def resume(session: AsyncSession, job_id: str) -> None:
    """A person confirmed one of the job's tasks: run it again (it checks what they did)."""
    await session.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id, jobs.c.status == AWAITING_OPERATOR)
        .values(status=PENDING, owner=None, lease_until=None, next_at=None)
    )


TASKS = OperatorTasks(operator_tasks, service="certificates", work_key="job_id")


def _finished() -> Any:
    """Done, and no person still has a task of it open (it is shown to them, and their
    confirmation must find it)."""
    open_task = (
        select(operator_tasks.c.task_id)
        .where(operator_tasks.c.job_id == jobs.c.job_id, operator_tasks.c.status == OPEN)
        .exists()
    )
    return and_(jobs.c.status == DONE, ~open_task)


async def _forget(session: AsyncSession, job_ids: list[str]) -> dict[str, int]:
    tasks = await session.execute(
        delete(operator_tasks).where(operator_tasks.c.job_id.in_(job_ids))
    )
    done = await session.execute(delete(jobs).where(jobs.c.job_id.in_(job_ids)))
    return {"jobs": done.rowcount, "operator_tasks": tasks.rowcount}  # type: ignore[attr-defined]


async def purge_finished(
    session: AsyncSession, saga_ids: list[str], *, now: datetime
) -> dict[str, int]:
    """Forget these ended rotations' finished jobs and their tasks, in the caller's transaction
    (their answers go with the rotation's command outcomes). An unfinished one stays (a person
    may still confirm its task, a later job of the rotation waits for it), marked so that
    housekeeping forgets it once it has finished."""
    # Marked before the finished ones are read: one that finishes in between is marked too.
    await session.execute(
        update(jobs)
        .where(jobs.c.saga_id.in_(saga_ids), jobs.c.rotation_purged_at.is_(None))
        .values(rotation_purged_at=now)
    )
    ids = await session.execute(
        select(jobs.c.job_id).where(jobs.c.saga_id.in_(saga_ids), _finished())
    )
    return await _forget(session, list(ids.scalars()))


async def forget_finished_after_purge(session: AsyncSession, *, limit: int) -> int:
    """Up to `limit` finished jobs of rotations whose records were purged (the backup
    deletions that purge queued, and jobs still unfinished then), with their tasks and their
    recorded answers; how many. They finish after the purge: nothing else would ever forget
    them, and nobody sends their commands again."""
    rows = (
        await session.execute(
            select(jobs.c.job_id, jobs.c.idempotency_key)
            .where(jobs.c.rotation_purged_at.is_not(None), _finished())
            .limit(limit)
        )
    ).all()
    if not rows:
        return 0
    ids = [row.job_id for row in rows]
    key = command_outcomes.c.idempotency_key
    # The person's confirmations of its tasks were answered after the purge too.
    confirmed = or_(false(), *(
        func.substr(key, 1, len(prefix)) == prefix
        for task in await session.execute(
            select(operator_tasks.c.task_id, jobs.c.saga_id)
            .join(jobs, jobs.c.job_id == operator_tasks.c.job_id)
            .where(operator_tasks.c.job_id.in_(ids))
        )
        if (prefix := confirmation_key_prefix(task.saga_id, task.task_id))
    ))  # fmt: skip
    await session.execute(
        delete(command_outcomes).where(
            or_(
                key.in_([row.idempotency_key for row in rows]),
                and_(command_outcomes.c.command_type == ConfirmOperatorTask.type_name(), confirmed),
            )
        )
    )
    return (await _forget(session, ids))["jobs"]
