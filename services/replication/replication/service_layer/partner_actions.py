"""Deleting and re-adding a partnership, on this site and on the partner's side: host
operations (a partnership is not in SEPM's REST definition), or a person's task when the host
driver is manual, verified by observation where this site's SEPM can show it."""

from __future__ import annotations

from certrotate_shared.hostops.base import HostOperationError, ManualTaskPending
from certrotate_shared.operator_task_lifecycle import CONFIRMED
from replication.adapters import repository
from replication.adapters.repository import Step
from replication.service_layer.partnership_pass import OPERATOR, OPERATOR_FAR, PartnershipPass


async def act_here(run: PartnershipPass, step: Step, action: str) -> bool:
    """Delete or add one partner on this site; False when a person now has the task."""
    # One key per operation and partner: a repeated call (a crash, a retry) acts once.
    key = f"{run.op.op_key}:{action}:{step.partner}"
    try:
        async with run.worker.connections.host_operations(run.site) as ops:
            if action == "delete":
                await ops.delete_replication_partner(run.site, step.partner, key=key)
            else:
                await ops.add_replication_partner(run.site, step.partner, key=key)
    except ManualTaskPending as pending:
        await _request_task(run, step.partner, action, pending, phase=OPERATOR)
        return False
    except HostOperationError as exc:
        # The host may have done it despite the error (a timeout after the fact).
        observed = await run.observe()
        if (step.partner in observed) == (action == "add"):
            return True
        await run.fail(
            f"could not {action} replication partner {step.partner} of {run.site.site}: {exc}",
            retryable=exc.retryable,
            forget=step.partner if action == "delete" else None,
        )
    return True


async def act_far(run: PartnershipPass, step: Step, action: str, *, done: str) -> str:
    """The partner's side of the pair: delete or re-add this site there."""
    key = f"{run.op.op_key}:{action}:{step.partner}:far"
    try:
        async with run.worker.connections.host_operations(run.site) as ops:
            if action == "delete":
                await ops.delete_replication_partner(
                    run.site, step.partner, key=key, on_partner_side=True
                )
            else:
                await ops.add_replication_partner(
                    run.site, step.partner, key=key, on_partner_side=True
                )
    except ManualTaskPending as pending:
        await _request_task(run, step.partner, f"{action}_far", pending, phase=OPERATOR_FAR)
        return OPERATOR_FAR
    except HostOperationError as exc:
        # This site's side is done (and recorded as broken or re-added): a retry of the
        # step finds it so and does only the partner's side.
        await run.fail(
            f"could not {action} site {run.site.site} on replication partner "
            f"{step.partner}'s side: {exc}",
            retryable=exc.retryable,
        )
    return await run.set(step.partner, done)


async def verify_task(run: PartnershipPass, step: Step, *, done_when_present: bool) -> bool:
    """A confirmed task is done when SEPM shows it; otherwise say so and keep it open."""
    assert step.task_id is not None
    async with run.ctx.uow() as uow:
        task = await repository.TASKS.get(uow.session, step.task_id)
    if task is None or task.status != CONFIRMED:
        return False
    observed = await run.observe()
    present = step.partner in observed
    async with run.ctx.uow() as uow:
        if present == done_when_present:
            await repository.TASKS.verified(uow.session, [step.task_id])
            await uow.commit()
            return True
        expected = "back" if done_when_present else "gone"
        listed = "does not list" if done_when_present else "still lists"
        await repository.TASKS.reopen(
            uow.session,
            lambda message: run.emit(uow, message),
            step.task_id,
            f"SEPM {listed} {step.partner} as a replication partner of "
            f"{run.site.site}; expected it {expected}",
        )
        await uow.commit()
    return False


async def verify_far_task(run: PartnershipPass, step: Step, *, done: str) -> str:
    """The partner's side is another site's SEPM, which this command does not reach: the
    person's confirmation is the check (their task says so)."""
    assert step.task_id is not None
    async with run.ctx.uow() as uow:
        task = await repository.TASKS.get(uow.session, step.task_id)
        if task is None or task.status != CONFIRMED:
            return OPERATOR_FAR
        await repository.TASKS.verified(uow.session, [step.task_id])
        await uow.commit()
    return await run.set(step.partner, done)


async def _request_task(
    run: PartnershipPass, partner: str, action: str, pending: ManualTaskPending, *, phase: str
) -> None:
    task = pending.task
    now = run.clock.now()
    async with run.ctx.uow() as uow:
        await repository.TASKS.request(
            uow.session,
            lambda message: run.emit(uow, message),
            task,
            work_key=run.op.op_key,
            site=run.site.site,
            now=now,
            partner=partner,
            action=action,
        )
        await repository.update_step(
            uow.session,
            run.op.op_key,
            partner,
            now=now,
            phase=phase,
            task_id=task.task_id,
        )
        await uow.commit()
