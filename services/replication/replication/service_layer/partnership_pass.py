"""One pass over a replication operation (BreakReplication or RestoreReplication; their
performers are in breaking.py and restoring.py, WORK in handlers.py, and the shared work
runner, certrotate_shared.work, runs them): each step in its own transaction, then the outcome.
A restart, or another replica once the lease runs out, resumes every open operation.

Each pass over an operation reads SEPM's replication status once, then moves each partner on.
A partnership is configured on both sites of the pair (see domain/partners.py for the order):
  break:   pending → deleting (intent committed first) → deleting_far (the partner's side)
           → broken | absent (not ours)
  restore: pending → adding → replicating (replicatenow sent) → adding_far (the partner's
           side, once this site's data reached it) → succeeded
Either may stop at `operator` / `operator_far` while a person does the host operation (the
manual driver); partner_actions.py verifies their confirmation by observation where it can
(this site's status) and takes the confirmation as the check for the partner's side.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn

from certrotate_shared.clock import Clock
from certrotate_shared.envelope import Event, Message
from certrotate_shared.failures import describe
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.replication import (
    BreakReplication,
    ReplicationBreakFailed,
    ReplicationRestoreFailed,
    RestoreReplication,
)
from certrotate_shared.sepm.api import SepmError
from certrotate_shared.work import GiveUp, WorkContext
from replication.adapters import broken_partnerships, repository
from replication.adapters.repository import Operation, Step
from replication.domain.partners import PartnerObservation, observe_partners, poll_delay
from replication.service_layer.connections import Connections
from replication.settings import Settings

log = logging.getLogger(__name__)

OPERATOR, OPERATOR_FAR = "operator", "operator_far"
FAR_DELETE, FAR_ADD = "deleting_far", "adding_far"
BREAK_OPEN = frozenset({"pending", "deleting", OPERATOR, FAR_DELETE, OPERATOR_FAR})
BROKEN_HERE = frozenset({"broken", FAR_DELETE, OPERATOR_FAR})


class Finished(Exception):
    """The operation has its outcome (already emitted); stop working on it."""


class TryLater(Exception):
    """SEPM could not be read this pass; look again later."""


class Partnerships:
    """What a pass over a replication operation needs besides its row: the settings, the
    connections to the sites, and the clock."""

    def __init__(self, settings: Settings, connections: Connections, clock: Clock) -> None:
        self.settings = settings
        self.connections = connections
        self.clock = clock

    def later(self, polls: int) -> datetime:
        """When to look at an operation again, backing off with the number of polls."""
        delay = poll_delay(
            polls,
            initial_s=self.settings.restore_poll_initial_s,
            maximum_s=self.settings.restore_poll_max_s,
        )
        return self.clock.now() + timedelta(seconds=delay)


async def one_pass(
    work: Callable[[PartnershipPass], Awaitable[datetime]],
    partnerships: Partnerships,
    ctx: WorkContext,
) -> datetime | None:
    """Run one pass; when to come back, or None once the operation has its outcome."""
    try:
        return await work(PartnershipPass(partnerships, ctx))
    except Finished:
        return None
    except TryLater:
        return partnerships.later(1)


def give_up(partnerships: Partnerships) -> GiveUp:
    """Out of attempts at an unexpected error: the operation's typed failure answers it."""

    async def answer(ctx: WorkContext, exc: Exception) -> None:
        with contextlib.suppress(Finished):
            await PartnershipPass(partnerships, ctx).fail(describe(exc), retryable=False)

    return answer


class PartnershipPass:
    """One pass over one operation: what it reads, records and answers."""

    def __init__(self, worker: Partnerships, ctx: WorkContext) -> None:
        self.worker = worker
        self.ctx = ctx
        self.clock = worker.clock
        op: Operation = ctx.work.details
        self.op = op
        command: Any = op.envelope.message()
        self.command: BreakReplication | RestoreReplication = command
        self.site: SiteTarget = command.site

    async def steps(self) -> list[Step]:
        """The operation's partners and where each stands."""
        async with self.ctx.uow() as uow:
            return await repository.steps_of(uow.session, self.op.op_key)

    async def observe(self) -> dict[str, PartnerObservation]:
        """The partners SEPM lists for this site now."""
        async with self.worker.connections.sepm(self.site) as sepm:
            return observe_partners(await sepm.replication_status())

    async def observe_or_fail(self, steps: list[Step]) -> dict[str, PartnerObservation]:
        """As observe(); SEPM not answering fails the operation, unless a run is being
        waited for and its deadline is not reached (TryLater)."""
        try:
            return await self.observe()
        except SepmError as exc:
            waiting = [s for s in steps if s.phase == "replicating"]
            now = self.clock.now()
            if exc.retryable and waiting and all(s.deadline and now < s.deadline for s in waiting):
                # A hiccup while we wait for a run; the run goes on without us.
                raise TryLater from None
            await self.fail(
                f"cannot read the replication status of {self.site.site}: {exc}",
                retryable=exc.retryable,
            )

    async def set(
        self, partner: str, phase: str, *, partnership: str | None = None, **values: Any
    ) -> str:
        """Record a partner's new phase (and the partnership's state); returns the phase."""
        now = self.clock.now()
        async with self.ctx.uow() as uow:
            await repository.update_step(
                uow.session, self.op.op_key, partner, now=now, phase=phase, **values
            )
            if partnership is not None:
                await broken_partnerships.mark_partnership(
                    uow.session,
                    saga_id=self.op.saga_id,
                    site=self.site.site,
                    partner=partner,
                    state=partnership,
                    op_key=self.op.op_key,
                    now=now,
                )
            await uow.commit()
        return phase

    async def fail(
        self,
        reason: str,
        *,
        retryable: bool,
        status_code: str | None = None,
        forget: str | None = None,
    ) -> NoReturn:
        """Emit the operation's failure outcome and stop."""
        event: Event
        if isinstance(self.command, BreakReplication):
            async with self.ctx.uow() as uow:
                if forget is not None:
                    await broken_partnerships.forget_partnership(
                        uow.session, saga_id=self.op.saga_id, site=self.site.site, partner=forget
                    )
                    await uow.commit()
            steps = await self.steps()
            event = ReplicationBreakFailed(
                site=self.site.site,
                reason=reason,
                retryable=retryable,
                # Broken on this site at least: restore must re-add them.
                broken_partners=[s.partner for s in steps if s.phase in BROKEN_HERE],
            )
        else:
            event = ReplicationRestoreFailed(
                site=self.site.site, reason=reason, retryable=retryable, status_code=status_code
            )
        await self.finish(event)
        raise Finished

    async def finish(self, event: Event, *, partnerships: dict[str, str] | None = None) -> None:
        """The outcome, recorded under the command's key so a re-sent command gets it too."""
        now = self.clock.now()
        async with self.ctx.uow() as uow:
            self.emit(uow, event)
            await uow.record_outcome(self.op.op_key, self.op.envelope.type, event)
            await repository.close_operation(
                uow.session,
                self.op.op_key,
                outcome_type=event.type_name(),
                outcome=event.model_dump(mode="json"),
                now=now,
            )
            for partner, state in (partnerships or {}).items():
                await broken_partnerships.mark_partnership(
                    uow.session,
                    saga_id=self.op.saga_id,
                    site=self.site.site,
                    partner=partner,
                    state=state,
                    op_key=self.op.op_key,
                    now=now,
                )
            await uow.commit()
        log.info("replication %s %s: %s", self.op.kind, self.op.op_key, event.type_name())

    def emit(self, uow: Any, message: Message) -> None:
        """Send a message of this operation's saga, caused by its command."""
        uow.emit(message, saga_id=self.op.saga_id, causation=self.op.envelope)
