"""A task handed to a person (the manual host-operations driver), the same way in every worker
service: requested once (OperatorTaskRequested, shown in the API and the CLI), confirmed by the
person (ConfirmOperatorTask), then judged by what the service observes: verified, or open again
with OperatorTaskVerificationFailed. A confirmation is never taken as the result itself.

Each worker keeps its tasks in a table of its own schema with the columns `task_id`, the key of
the work that waits for it, `status` (open | confirmed | verified), `confirmed_by`,
`requested_at` and `confirmed_at`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Event
from certrotate_shared.hostops import OperatorTask
from certrotate_shared.messages.operator_tasks import (
    ConfirmOperatorTask,
    OperatorTaskRequested,
    OperatorTaskVerificationFailed,
)

OPEN, CONFIRMED, VERIFIED = "open", "confirmed", "verified"
WorkerService = Literal["replication", "certificates"]


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    work_key: str
    status: str


class OperatorTasks:
    """One service's operator tasks, in its table."""

    def __init__(self, table: Table, *, service: WorkerService, work_key: str) -> None:
        self.table = table
        self.service = service
        self._task = table.c.task_id
        self._work = table.c[work_key]
        self._work_key = work_key

    async def get(self, session: AsyncSession, task_id: str) -> TaskRecord | None:
        """The task, as the service last recorded it."""
        row = (await session.execute(select(self.table).where(self._task == task_id))).first()
        if row is None:
            return None
        return TaskRecord(row.task_id, getattr(row, self._work_key), row.status)

    async def request(
        self,
        session: AsyncSession,
        emit: Callable[[OperatorTaskRequested], Any],
        task: OperatorTask,
        *,
        work_key: str,
        site: str,
        now: datetime,
        **columns: Any,
    ) -> bool:
        """Record the task and ask a person for it, once; False if it was asked for already."""
        if await self.get(session, task.task_id) is not None:
            return False
        await session.execute(
            insert(self.table).values(
                task_id=task.task_id,
                status=OPEN,
                requested_at=now,
                **{self._work_key: work_key},
                **columns,
            )
        )
        emit(
            OperatorTaskRequested(
                task_id=task.task_id,
                service=self.service,
                site=site,
                server=task.server,
                title=task.title,
                instructions=task.instructions,
                verification=task.verification,
            )
        )
        return True

    async def confirm(
        self,
        message: ConfirmOperatorTask,
        ctx: Context,
        *,
        now: datetime,
        resume: Callable[[AsyncSession, str], Awaitable[None]],
    ) -> Event | None:
        """The person says it is done: the work that waits for it runs again and checks.
        A task this service never asked for is answered at once."""
        if message.target_service != self.service:
            return None
        session = ctx.uow.session
        task = await self.get(session, message.task_id)
        if task is None:
            return OperatorTaskVerificationFailed(
                task_id=message.task_id,
                reason=f"the {self.service} service has no operator task {message.task_id!r}",
            )
        if task.status != OPEN:
            return None  # confirmed twice, or already verified: the check is under way or done
        await session.execute(
            update(self.table)
            .where(self._task == task.task_id)
            .values(status=CONFIRMED, confirmed_by=message.confirmed_by, confirmed_at=now)
        )
        await resume(session, task.work_key)
        return None

    async def confirmed(self, session: AsyncSession, work_key: str) -> list[str]:
        """The tasks of a piece of work a person has done (confirmed or verified)."""
        rows = await session.execute(
            select(self._task).where(self._work == work_key, self.table.c.status != OPEN)
        )
        return sorted(row[0] for row in rows)

    async def unverified(self, session: AsyncSession, work_key: str) -> list[str]:
        """The tasks of a piece of work confirmed by a person and not yet checked."""
        rows = await session.execute(
            select(self._task).where(self._work == work_key, self.table.c.status == CONFIRMED)
        )
        return sorted(row[0] for row in rows)

    async def verified(self, session: AsyncSession, task_ids: list[str]) -> None:
        """What the service observes matches the confirmation."""
        if task_ids:
            await session.execute(
                update(self.table).where(self._task.in_(task_ids)).values(status=VERIFIED)
            )

    async def reopen(
        self,
        session: AsyncSession,
        emit: Callable[[OperatorTaskVerificationFailed], Any],
        task_id: str,
        reason: str,
    ) -> None:
        """What the service observes contradicts the confirmation: the task is open again."""
        await session.execute(update(self.table).where(self._task == task_id).values(status=OPEN))
        emit(OperatorTaskVerificationFailed(task_id=task_id, reason=reason))
