"""Step 7's performer: re-add each partnership here, replicate now, wait for SUCCEEDED, then
re-add this site on the partner's side, once this site's data has reached it."""

from __future__ import annotations

from datetime import datetime, timedelta

from certrotate_shared.messages.replication import (
    PartnerStatus,
    ReplicationRestored,
    RestoreReplication,
)
from certrotate_shared.sepm.api import SepmError
from certrotate_shared.work import WorkContext
from replication.domain.partners import SUCCEEDED, Baseline, judge_restore, observe_partners
from replication.service_layer.partner_actions import (
    act_far,
    act_here,
    verify_far_task,
    verify_task,
)
from replication.service_layer.partnership_pass import (
    FAR_ADD,
    OPERATOR,
    OPERATOR_FAR,
    Finished,
    PartnershipPass,
    Partnerships,
    one_pass,
)


async def restore_partnerships(
    command: RestoreReplication, ctx: WorkContext, *, partnerships: Partnerships
) -> datetime | None:
    """Step 7, one pass: re-add, replicate now, wait for SUCCEEDED, then the partner's side."""
    return await one_pass(_restore, partnerships, ctx)


async def _restore(run: PartnershipPass) -> datetime:
    steps = await run.steps()
    observed = await run.observe_or_fail(steps)
    now = run.clock.now()
    phases = {s.partner: s.phase for s in steps}
    polls: list[int] = []
    for step in steps:
        partner, present = step.partner, step.partner in observed
        phase = step.phase
        if phase == "pending":
            phase = "replicate" if present else await run.set(partner, "adding")
        if phase == "adding":
            added = present or await act_here(run, step, "add")
            phase = "replicate" if added else OPERATOR
        elif phase == OPERATOR and await verify_task(run, step, done_when_present=True):
            phase = "replicate"
        if phase == "replicate":
            phase = await _replicate_now(run, partner, now)
            polls.append(0)
        elif phase == "replicating":
            assert step.deadline is not None
            verdict = judge_restore(
                partner,
                observed.get(partner),
                Baseline(step.baseline_run_ms, step.baseline_success_ms),
                timed_out=now >= step.deadline,
                timeout_s=run.worker.settings.restore_timeout_s,
            )
            if verdict.succeeded:
                seen = observed[partner]
                # This site's data has reached the partner: its side can re-add now.
                phase = await run.set(
                    partner,
                    FAR_ADD,
                    status_code=seen.status_code,
                    last_success_ms=seen.last_success_ms,
                )
            elif verdict.done:
                await run.fail(verdict.reason, retryable=True, status_code=verdict.status_code)
            else:
                await run.set(partner, "replicating", polls=step.polls + 1)
                polls.append(step.polls + 1)
        if phase == FAR_ADD:
            phase = await act_far(run, step, "add", done="succeeded")
        elif phase == OPERATOR_FAR:
            phase = await verify_far_task(run, step, done="succeeded")
        phases[partner] = phase
    if all(p == "succeeded" for p in phases.values()):
        final = await run.steps()
        await run.finish(
            ReplicationRestored(
                site=run.site.site,
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
        raise Finished
    return run.worker.later(min(polls) if polls else 30)


async def _replicate_now(run: PartnershipPass, partner: str, now: datetime) -> str:
    """Ask SEPM for a run now; only a run that ends after this counts."""
    try:
        async with run.worker.connections.sepm(run.site) as sepm:
            before = observe_partners(await sepm.replication_status()).get(partner)
            code = await sepm.replicate_now(partner)
    except SepmError as exc:
        await run.fail(f"replicatenow with {partner} failed: {exc}", retryable=exc.retryable)
    if code != 0:
        await run.fail(
            f"SEPM did not accept replicatenow with {partner} (code {code})", retryable=True
        )
    baseline = Baseline.of(before)
    deadline = now + timedelta(seconds=run.worker.settings.restore_timeout_s)
    return await run.set(
        partner,
        "replicating",
        baseline_run_ms=baseline.last_run_ms,
        baseline_success_ms=baseline.last_success_ms,
        deadline=deadline,
        polls=0,
    )
