"""Long-running work, the same way in every worker service.

A handler that accepts a long-running command (a certificate install, a replication restore,
a propagation watch) only records a row in its service's work table and wakes the runner once
its transaction commits. The runner (certrotate_shared.work_runner), a background loop, takes
due rows under the shared lease (certrotate_shared.leases), renews them while it works, and
hands each to the performer its command's type names in the service's WORK table, which sits
beside HANDLERS at the bottom of service_layer/handlers.py. So a command is followed from Kafka to SEPM through two tables:
HANDLERS[type] accepts it, WORK[type] performs it.

A performer makes one pass: it records its progress and, in the end, the command's outcome
(in its own transactions), and returns when to look at the work again, or None when the work
needs nothing more from this runner (it has its outcome, or waits for a person). Failures are
classified once (certrotate_shared.failures): a transient error is waited out with back-off and
never counted; after `max_attempts` unexpected ones, `give_up` answers the command with its
typed failure instead of retrying for ever. A replica that is killed stops renewing; once its
lease has run out, another replica takes its work over and carries on from what was recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import Envelope, Message
from certrotate_shared.leases import Lease

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime
    from certrotate_shared.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Work:
    """One piece of long-running work, as its table holds it."""

    key: str
    envelope: Envelope
    # What the service's table keeps besides the command (a job's confirmed tasks...).
    details: Any = None

    def command(self) -> Message:
        return self.envelope.message()


@dataclass(frozen=True)
class WorkContext:
    """What a performer gets besides its command: its work row and the service it runs in."""

    work: Work
    runtime: ServiceRuntime

    def uow(self) -> UnitOfWork:
        """A new transaction on the service's database."""
        return self.runtime.uow()

    def emit(self, uow: UnitOfWork, message: Message) -> None:
        """Queue a message caused by the work's command (same saga, same correlation)."""
        uow.emit(message, saga_id=self.work.envelope.saga_id, causation=self.work.envelope)


# One pass at a piece of work: when to look again, or None when this runner is done with it.
Perform = Callable[[Any, WorkContext], Awaitable[datetime | None]]
# Out of attempts: answer the command with its typed failure (and close its row).
GiveUp = Callable[[WorkContext, Exception], Awaitable[None]]


class WorkTable(Protocol):
    """A service's work table, as the runner reads and writes it."""

    async def due(
        self, session: AsyncSession, lease: Lease, *, now: datetime, limit: int
    ) -> list[Work]:
        """Rows that can be worked on now and that nobody holds, oldest first."""
        ...

    def taken(self, now: datetime) -> dict[str, Any]:
        """Values written with a take (a status, the holder's address...)."""
        ...

    def again(self, at: datetime) -> dict[str, Any]:
        """Values written when the runner lets a row go until `at`."""
        ...

    def kept(self) -> dict[str, Any]:
        """Values written again with every renewal (the holder's address, once it is known)."""
        ...
