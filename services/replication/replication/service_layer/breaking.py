"""Step 1's performer: delete each partnership on this site, then on the partner's side."""

from __future__ import annotations

from datetime import datetime

from certrotate_shared.messages.replication import BreakReplication, ReplicationBroken
from certrotate_shared.work import WorkContext
from replication.adapters import broken_partnerships
from replication.domain.partners import BreakDecision, decide_break
from replication.service_layer.partner_actions import (
    act_far,
    act_here,
    verify_far_task,
    verify_task,
)
from replication.service_layer.partnership_pass import (
    BREAK_OPEN,
    FAR_DELETE,
    OPERATOR,
    OPERATOR_FAR,
    Finished,
    PartnershipPass,
    Partnerships,
    one_pass,
)


async def break_partnerships(
    command: BreakReplication, ctx: WorkContext, *, partnerships: Partnerships
) -> datetime | None:
    """Step 1, one pass: delete each partnership here, then on the partner's side."""
    return await one_pass(_break, partnerships, ctx)


async def _break(run: PartnershipPass) -> datetime:
    steps = await run.steps()
    async with run.ctx.uow() as uow:
        ours = await broken_partnerships.partners_broken_by(
            uow.session, saga_id=run.op.saga_id, site=run.site.site
        )
    observed = await run.observe_or_fail(steps)
    phases = {s.partner: s.phase for s in steps}
    for step in steps:
        partner, present = step.partner, step.partner in observed
        phase = step.phase
        if phase == "pending":
            decision = decide_break(present=present, broken_by_this_saga=partner in ours)
            if decision is BreakDecision.NOT_OURS:
                phase = await run.set(partner, "absent")
            elif decision is BreakDecision.OURS:
                phase = await run.set(partner, FAR_DELETE, partnership="broken")
            else:
                # The intent is committed before the host acts: if we crash after the
                # deletion, the next pass still knows the partnership was ours.
                phase = await run.set(partner, "deleting", partnership="deleting")
        if phase == "deleting":
            if not present or await act_here(run, step, "delete"):
                phase = await run.set(partner, FAR_DELETE, partnership="broken")
            else:
                phase = OPERATOR
        elif phase == OPERATOR and await verify_task(run, step, done_when_present=False):
            phase = await run.set(partner, FAR_DELETE, partnership="broken")
        if phase == FAR_DELETE:
            phase = await act_far(run, step, "delete", done="broken")
        elif phase == OPERATOR_FAR:
            phase = await verify_far_task(run, step, done="broken")
        phases[partner] = phase
    if any(p in BREAK_OPEN for p in phases.values()):
        return run.worker.later(30)
    broken = [s.partner for s in steps if phases[s.partner] == "broken"]
    await run.finish(ReplicationBroken(site=run.site.site, broken_partners=broken))
    raise Finished
