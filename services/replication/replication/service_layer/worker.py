"""The performers of BreakReplication and RestoreReplication (WORK in handlers.py; the shared
work runner, certrotate_shared.work, runs them): each step in its own transaction, then the
outcome. A restart, or another replica once the lease runs out, resumes every open operation.

Each pass over an operation reads SEPM's replication status once, then moves each partner on.
A partnership is configured on both sites of the pair (see domain/partners.py for the order):
  break:   pending → deleting (intent committed first) → deleting_far (the partner's side)
           → broken | absent (not ours)
  restore: pending → adding → replicating (replicatenow sent) → adding_far (the partner's
           side, once this site's data reached it) → succeeded
Either may stop at `operator` / `operator_far` while a person does the host operation (the
manual driver); the worker verifies their confirmation by observation where it can (this
site's status) and takes the confirmation as the check for the partner's side.
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
from certrotate_shared.hostops.base import HostOperationError, ManualTaskPending
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.replication import (
    BreakReplication,
    PartnerStatus,
    ReplicationBreakFailed,
    ReplicationBroken,
    ReplicationRestored,
    ReplicationRestoreFailed,
    RestoreReplication,
)
from certrotate_shared.operator_task_lifecycle import CONFIRMED
from certrotate_shared.sepm.api import SepmError
from certrotate_shared.work import GiveUp, WorkContext
from replication.adapters import repository
from replication.adapters.repository import Operation, Step
from replication.domain.partners import (
    SUCCEEDED,
    Baseline,
    BreakDecision,
    PartnerObservation,
    decide_break,
    judge_restore,
    observe_partners,
    poll_delay,
)
from replication.service_layer.connections import Connections
from replication.settings import Settings

log = logging.getLogger(__name__)

OPERATOR, OPERATOR_FAR = "operator", "operator_far"
FAR_DELETE, FAR_ADD = "deleting_far", "adding_far"
BREAK_OPEN = frozenset({"pending", "deleting", OPERATOR, FAR_DELETE, OPERATOR_FAR})
BROKEN_HERE = frozenset({"broken", FAR_DELETE, OPERATOR_FAR})


class _Finished(Exception):
    """The operation has its outcome (already emitted); stop working on it."""


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


async def break_partnerships(
    command: BreakReplication, ctx: WorkContext, *, partnerships: Partnerships
) -> datetime | None:
    """Step 1, one pass: delete each partnership here, then on the partner's side."""
    return await _one_pass(_Job(partnerships, ctx).work_break, partnerships)


async def restore_partnerships(
    command: RestoreReplication, ctx: WorkContext, *, partnerships: Partnerships
) -> datetime | None:
    """Step 7, one pass: re-add, replicate now, wait for SUCCEEDED, then the partner's side."""
    return await _one_pass(_Job(partnerships, ctx).work_restore, partnerships)


async def _one_pass(
    work: Callable[[], Awaitable[datetime]], partnerships: Partnerships
) -> datetime | None:
    try:
        return await work()
    except _Finished:
        return None
    except _TryLater:
        return partnerships.later(1)


def give_up(partnerships: Partnerships) -> GiveUp:
    """Out of attempts at an unexpected error: the operation's typed failure answers it."""

    async def answer(ctx: WorkContext, exc: Exception) -> None:
        with contextlib.suppress(_Finished):
            await _Job(partnerships, ctx)._fail(describe(exc), retryable=False)

    return answer


class _Job:
    """One pass over one operation."""

    def __init__(self, worker: Partnerships, ctx: WorkContext) -> None:
        self.worker = worker
        self.ctx = ctx
        self.clock = worker.clock
        op: Operation = ctx.work.details
        self.op = op
        command: Any = op.envelope.message()
        self.command: BreakReplication | RestoreReplication = command
        self.site: SiteTarget = command.site

    # -- break ----------------------------------------------------------------------------
    async def work_break(self) -> datetime:
        steps = await self._steps()
        async with self.ctx.uow() as uow:
            ours = await repository.partners_broken_by(
                uow.session, saga_id=self.op.saga_id, site=self.site.site
            )
        observed = await self._observe_or_fail(steps)
        phases = {s.partner: s.phase for s in steps}
        for step in steps:
            partner, present = step.partner, step.partner in observed
            phase = step.phase
            if phase == "pending":
                decision = decide_break(present=present, broken_by_this_saga=partner in ours)
                if decision is BreakDecision.NOT_OURS:
                    phase = await self._set(partner, "absent")
                elif decision is BreakDecision.OURS:
                    phase = await self._set(partner, FAR_DELETE, partnership="broken")
                else:
                    # The intent is committed before the host acts: if we crash after the
                    # deletion, the next pass still knows the partnership was ours.
                    phase = await self._set(partner, "deleting", partnership="deleting")
            if phase == "deleting":
                if not present or await self._host(step, "delete"):
                    phase = await self._set(partner, FAR_DELETE, partnership="broken")
                else:
                    phase = OPERATOR
            elif phase == OPERATOR and await self._verify_task(step, done_when_present=False):
                phase = await self._set(partner, FAR_DELETE, partnership="broken")
            if phase == FAR_DELETE:
                phase = await self._far(step, "delete", done="broken")
            elif phase == OPERATOR_FAR:
                phase = await self._verify_far_task(step, done="broken")
            phases[partner] = phase
        if any(p in BREAK_OPEN for p in phases.values()):
            return self.worker.later(30)
        broken = [s.partner for s in steps if phases[s.partner] == "broken"]
        await self._finish(ReplicationBroken(site=self.site.site, broken_partners=broken))
        raise _Finished

    # -- restore --------------------------------------------------------------------------
    async def work_restore(self) -> datetime:
        steps = await self._steps()
        observed = await self._observe_or_fail(steps)
        now = self.clock.now()
        phases = {s.partner: s.phase for s in steps}
        polls: list[int] = []
        for step in steps:
            partner, present = step.partner, step.partner in observed
            phase = step.phase
            if phase == "pending":
                phase = "replicate" if present else await self._set(partner, "adding")
            if phase == "adding":
                added = present or await self._host(step, "add")
                phase = "replicate" if added else OPERATOR
            elif phase == OPERATOR and await self._verify_task(step, done_when_present=True):
                phase = "replicate"
            if phase == "replicate":
                phase = await self._replicate_now(partner, now)
                polls.append(0)
            elif phase == "replicating":
                assert step.deadline is not None
                verdict = judge_restore(
                    partner,
                    observed.get(partner),
                    Baseline(step.baseline_run_ms, step.baseline_success_ms),
                    timed_out=now >= step.deadline,
                    timeout_s=self.worker.settings.restore_timeout_s,
                )
                if verdict.succeeded:
                    seen = observed[partner]
                    # This site's data has reached the partner: its side can re-add now.
                    phase = await self._set(
                        partner,
                        FAR_ADD,
                        status_code=seen.status_code,
                        last_success_ms=seen.last_success_ms,
                    )
                elif verdict.done:
                    await self._fail(
                        verdict.reason, retryable=True, status_code=verdict.status_code
                    )
                else:
                    await self._set(partner, "replicating", polls=step.polls + 1)
                    polls.append(step.polls + 1)
            if phase == FAR_ADD:
                phase = await self._far(step, "add", done="succeeded")
            elif phase == OPERATOR_FAR:
                phase = await self._verify_far_task(step, done="succeeded")
            phases[partner] = phase
        if all(p == "succeeded" for p in phases.values()):
            final = await self._steps()
            await self._finish(
                ReplicationRestored(
                    site=self.site.site,
                    partners=[
                        PartnerStatus(
                            name=s.partner,
                            status_code=s.status_code or SUCCEEDED,
                            last_successful_run_time=s.last_success_ms,
                        )
                        for s in final
                    ],
                ),
                partnerships={s.partner: "restored" for s in final},
            )
            raise _Finished
        return self.worker.later(min(polls) if polls else 30)

    async def _replicate_now(self, partner: str, now: datetime) -> str:
        """Ask SEPM for a run now; only a run that ends after this counts."""
        try:
            async with self.worker.connections.sepm(self.site) as sepm:
                before = observe_partners(await sepm.replication_status()).get(partner)
                code = await sepm.replicate_now(partner)
        except SepmError as exc:
            await self._fail(f"replicatenow with {partner} failed: {exc}", retryable=exc.retryable)
        if code != 0:
            await self._fail(
                f"SEPM did not accept replicatenow with {partner} (code {code})", retryable=True
            )
        baseline = Baseline.of(before)
        deadline = now + timedelta(seconds=self.worker.settings.restore_timeout_s)
        return await self._set(
            partner,
            "replicating",
            baseline_run_ms=baseline.last_run_ms,
            baseline_success_ms=baseline.last_success_ms,
            deadline=deadline,
            polls=0,
        )

    # -- shared steps ---------------------------------------------------------------------
    async def _steps(self) -> list[Step]:
        async with self.ctx.uow() as uow:
            return await repository.steps_of(uow.session, self.op.op_key)

    async def _observe(self) -> dict[str, PartnerObservation]:
        async with self.worker.connections.sepm(self.site) as sepm:
            return observe_partners(await sepm.replication_status())

    async def _observe_or_fail(self, steps: list[Step]) -> dict[str, PartnerObservation]:
        try:
            return await self._observe()
        except SepmError as exc:
            waiting = [s for s in steps if s.phase == "replicating"]
            now = self.clock.now()
            if exc.retryable and waiting and all(s.deadline and now < s.deadline for s in waiting):
                # A hiccup while we wait for a run; the run goes on without us.
                raise _TryLater from None
            await self._fail(
                f"cannot read the replication status of {self.site.site}: {exc}",
                retryable=exc.retryable,
            )

    async def _host(self, step: Step, action: str) -> bool:
        """Delete or add one partner on this site; False when a person now has the task."""
        # One key per operation and partner: a repeated call (a crash, a retry) acts once.
        key = f"{self.op.op_key}:{action}:{step.partner}"
        try:
            async with self.worker.connections.host_operations(self.site) as ops:
                if action == "delete":
                    await ops.delete_replication_partner(self.site, step.partner, key=key)
                else:
                    await ops.add_replication_partner(self.site, step.partner, key=key)
        except ManualTaskPending as pending:
            await self._request_task(step.partner, action, pending, phase=OPERATOR)
            return False
        except HostOperationError as exc:
            # The host may have done it despite the error (a timeout after the fact).
            observed = await self._observe()
            if (step.partner in observed) == (action == "add"):
                return True
            await self._fail(
                f"could not {action} replication partner {step.partner} of {self.site.site}: {exc}",
                retryable=exc.retryable,
                forget=step.partner if action == "delete" else None,
            )
        return True

    async def _far(self, step: Step, action: str, *, done: str) -> str:
        """The partner's side of the pair: delete or re-add this site there."""
        key = f"{self.op.op_key}:{action}:{step.partner}:far"
        try:
            async with self.worker.connections.host_operations(self.site) as ops:
                if action == "delete":
                    await ops.delete_replication_partner(
                        self.site, step.partner, key=key, on_partner_side=True
                    )
                else:
                    await ops.add_replication_partner(
                        self.site, step.partner, key=key, on_partner_side=True
                    )
        except ManualTaskPending as pending:
            await self._request_task(step.partner, f"{action}_far", pending, phase=OPERATOR_FAR)
            return OPERATOR_FAR
        except HostOperationError as exc:
            # This site's side is done (and recorded as broken or re-added): a retry of the
            # step finds it so and does only the partner's side.
            await self._fail(
                f"could not {action} site {self.site.site} on replication partner "
                f"{step.partner}'s side: {exc}",
                retryable=exc.retryable,
            )
        return await self._set(step.partner, done)

    async def _request_task(
        self, partner: str, action: str, pending: ManualTaskPending, *, phase: str
    ) -> None:
        task = pending.task
        now = self.clock.now()
        async with self.ctx.uow() as uow:
            await repository.TASKS.request(
                uow.session,
                lambda message: self._emit(uow, message),
                task,
                work_key=self.op.op_key,
                site=self.site.site,
                now=now,
                partner=partner,
                action=action,
            )
            await repository.update_step(
                uow.session,
                self.op.op_key,
                partner,
                now=now,
                phase=phase,
                task_id=task.task_id,
            )
            await uow.commit()

    async def _verify_task(self, step: Step, *, done_when_present: bool) -> bool:
        """A confirmed task is done when SEPM shows it; otherwise say so and keep it open."""
        assert step.task_id is not None
        async with self.ctx.uow() as uow:
            task = await repository.TASKS.get(uow.session, step.task_id)
        if task is None or task.status != CONFIRMED:
            return False
        observed = await self._observe()
        present = step.partner in observed
        async with self.ctx.uow() as uow:
            if present == done_when_present:
                await repository.TASKS.verified(uow.session, [step.task_id])
                await uow.commit()
                return True
            expected = "back" if done_when_present else "gone"
            listed = "does not list" if done_when_present else "still lists"
            await repository.TASKS.reopen(
                uow.session,
                lambda message: self._emit(uow, message),
                step.task_id,
                f"SEPM {listed} {step.partner} as a replication partner of "
                f"{self.site.site}; expected it {expected}",
            )
            await uow.commit()
        return False

    async def _verify_far_task(self, step: Step, *, done: str) -> str:
        """The partner's side is another site's SEPM, which this command does not reach: the
        person's confirmation is the check (their task says so)."""
        assert step.task_id is not None
        async with self.ctx.uow() as uow:
            task = await repository.TASKS.get(uow.session, step.task_id)
            if task is None or task.status != CONFIRMED:
                return OPERATOR_FAR
            await repository.TASKS.verified(uow.session, [step.task_id])
            await uow.commit()
        return await self._set(step.partner, done)

    async def _set(
        self, partner: str, phase: str, *, partnership: str | None = None, **values: Any
    ) -> str:
        now = self.clock.now()
        async with self.ctx.uow() as uow:
            await repository.update_step(
                uow.session, self.op.op_key, partner, now=now, phase=phase, **values
            )
            if partnership is not None:
                await repository.mark_partnership(
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

    async def _fail(
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
                    await repository.forget_partnership(
                        uow.session, saga_id=self.op.saga_id, site=self.site.site, partner=forget
                    )
                    await uow.commit()
            steps = await self._steps()
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
        await self._finish(event)
        raise _Finished

    async def _finish(self, event: Event, *, partnerships: dict[str, str] | None = None) -> None:
        """The outcome, recorded under the command's key so a re-sent command gets it too."""
        now = self.clock.now()
        async with self.ctx.uow() as uow:
            self._emit(uow, event)
            await uow.record_outcome(self.op.op_key, self.op.envelope.type, event)
            await repository.close_operation(
                uow.session,
                self.op.op_key,
                outcome_type=event.type_name(),
                outcome=event.model_dump(mode="json"),
                now=now,
            )
            for partner, state in (partnerships or {}).items():
                await repository.mark_partnership(
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

    def _emit(self, uow: Any, message: Message) -> None:
        uow.emit(message, saga_id=self.op.saga_id, causation=self.op.envelope)


class _TryLater(Exception):
    """SEPM could not be read this pass; look again later."""
