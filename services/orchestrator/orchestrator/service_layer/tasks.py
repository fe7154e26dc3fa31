"""Manual host operations: tasks workers ask a person to do, and their confirmations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.messages.operator_tasks import (
    ConfirmOperatorTask,
    OperatorTaskRequested,
    confirmation_key_prefix,
)
from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters.orm import operator_tasks
from orchestrator.adapters.paging import Key, moment
from orchestrator.adapters.repository import SagaRepository, from_db, to_db
from orchestrator.domain.history import CommandSent
from orchestrator.service_layer.errors import ConflictError, NotFoundError
from orchestrator.service_layer.paging import page


async def record_task(
    session: AsyncSession, task: OperatorTaskRequested, *, saga_id: str, causation_id: str | None,
    now: datetime,
) -> None:  # fmt: skip
    values = {
        "task_id": task.task_id,
        "saga_id": saga_id,
        "service": task.service,
        "site": task.site,
        "server": task.server,
        "title": task.title,
        "instructions": task.instructions,
        "verification": task.verification,
        "status": "open",
        "causation_id": causation_id,
        "requested_at": to_db(now),
        "confirmations": 0,
    }
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(operator_tasks)
    await session.execute(stmt.values(values).on_conflict_do_nothing())


async def reopen_task(session: AsyncSession, task_id: str, reason: str) -> None:
    await session.execute(
        update(operator_tasks)
        .where(operator_tasks.c.task_id == task_id)
        .values(status="open", last_failure=reason)
    )


_ANSWERED = "orchestrator.tasks_answered"
_CLOSE_ANSWERED = (
    update(operator_tasks)
    .where(operator_tasks.c.causation_id.in_(bindparam("causations", expanding=True)))
    .values(status="done")
)


def close_tasks_answered_by(uow: UnitOfWork, causation_id: str | None) -> None:
    """The command a task belonged to has been answered: the task is done.

    Queued: the transaction closes all it queued in one statement before it commits (or when
    it flushes its deferred writes first, as before recording or reopening a task)."""
    if not causation_id:
        return
    uow.session.info.setdefault(_ANSWERED, []).append(causation_id)

    async def flush() -> None:
        causations = uow.session.info.pop(_ANSWERED, [])
        if causations:
            await uow.session.execute(_CLOSE_ANSWERED, {"causations": causations})

    uow.defer(_ANSWERED, flush)


def task_view(row: Any) -> dict[str, Any]:
    return {
        "task_id": row.task_id,
        "rotation_id": row.saga_id,
        "service": row.service,
        "site": row.site,
        "server": row.server,
        "title": row.title,
        "instructions": row.instructions,
        "verification": row.verification,
        "status": row.status,
        "requested_at": from_db(row.requested_at),
        "confirmed_by": row.confirmed_by,
        "confirmed_at": from_db(row.confirmed_at) if row.confirmed_at else None,
        "last_failure": row.last_failure,
    }


# The tasks a person still has to do or that wait to be verified (a list's default).
OPEN_OR_CONFIRMED = operator_tasks.c.status.in_(["open", "confirmed"])
# In the order they were asked for; the id orders two asked at the same instant, so that a
# list (and the entity tag of a view that shows it) reads the same twice.
IN_ORDER_ASKED = (operator_tasks.c.requested_at, operator_tasks.c.task_id)


async def list_tasks(
    session: AsyncSession, *, rotation_id: str | None, status: str | None
) -> list[dict[str, Any]]:
    query = _tasks(rotation_id, status).order_by(*IN_ORDER_ASKED)
    return [task_view(r) for r in (await session.execute(query)).all()]


async def page_tasks(
    session: AsyncSession,
    *,
    rotation_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Tasks in the order they were asked for, `limit` at a time after `cursor`."""
    keys = [moment(operator_tasks.c.requested_at), Key(operator_tasks.c.task_id)]
    rows, next_cursor = await page(
        session, _tasks(rotation_id, status), keys, cursor=cursor, limit=limit
    )
    return [task_view(r) for r in rows], next_cursor


def _tasks(rotation_id: str | None, status: str | None) -> Select[Any]:
    query = select(operator_tasks)
    if rotation_id:
        query = query.where(operator_tasks.c.saga_id == rotation_id)
    if status != "all":
        query = query.where(operator_tasks.c.status == status if status else OPEN_OR_CONFIRMED)
    return query


async def confirm_task(
    uow: UnitOfWork, task_id: str, *, by: str, note: str, now: datetime
) -> dict[str, Any]:
    """Tell the worker the person did it; the worker then verifies by observation."""
    row = (
        await uow.session.execute(select(operator_tasks).where(operator_tasks.c.task_id == task_id))
    ).first()
    if row is None:
        raise NotFoundError(f"no operator task {task_id!r}")
    if row.status == "done":
        raise ConflictError(f"task {task_id!r} is already done")
    attempt = row.confirmations + 1
    command = ConfirmOperatorTask(
        idempotency_key=f"{confirmation_key_prefix(row.saga_id, task_id)}{attempt}",
        target_service=row.service,
        task_id=task_id,
        confirmed_by=by,
        note=note,
    )
    envelope = uow.emit(command, saga_id=row.saga_id)
    await uow.session.execute(
        update(operator_tasks)
        .where(operator_tasks.c.task_id == task_id)
        .values(status="confirmed", confirmed_by=by, confirmed_at=to_db(now), confirmations=attempt)
    )
    await SagaRepository(uow.session).record(
        row.saga_id,
        [
            CommandSent(
                at=now,
                type=envelope.type,
                actor=by,
                message_id=str(envelope.message_id),
                payload=envelope.payload,
            ).row()
        ],
    )
    refreshed = (
        await uow.session.execute(select(operator_tasks).where(operator_tasks.c.task_id == task_id))
    ).first()
    return task_view(refreshed)
