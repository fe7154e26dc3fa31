"""Operator actions: pause, resume, cancel, approve, replay a parked message, decide."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.domain.inputs import (
    ActionRejectedError,
    ApprovalGiven,
    CancelRequested,
    DecisionMade,
    PauseRequested,
    ReplayRequested,
    ResumeRequested,
)
from orchestrator.domain.state import (
    Approval,
    RiskAcceptance,
)
from orchestrator.domain.step_kinds import Gate
from orchestrator.domain.steps import step_named
from orchestrator.domain.transition import (
    Transition,
    abandon,
    arm_deadline,
    can_abort,
    cancel_watch,
    current_step,
    finish_record,
    new_record,
    resend,
    send_command,
    set_record_status,
)
from orchestrator.domain.walk import check_gates, compensate, enter_next, redo


def on_pause(t: Transition, action: PauseRequested) -> None:
    s = t.s
    if s.hold:
        raise ActionRejectedError("the rotation is already paused")
    s.hold = True
    s.hold_reason = action.reason or f"paused by {action.by}"
    t.note(f"paused by {action.by}: no new command is sent until it is resumed")


def on_resume(t: Transition, action: ResumeRequested) -> None:
    s = t.s
    if not s.hold:
        if s.pending_decision is not None:
            options = ", ".join(s.pending_decision.options)
            raise ActionRejectedError(f"the rotation awaits a decision ({options}): use decide")
        raise ActionRejectedError("the rotation is not paused")
    s.hold, s.hold_reason = False, None
    t.note(f"resumed by {action.by}")
    if s.deferred and s.pending_decision is None:
        send_command(t)
    elif isinstance(current_step(s), Gate) and s.pending_decision is None:
        check_gates(t)


def on_cancel(t: Transition, action: CancelRequested) -> None:
    s = t.s
    if s.phase == "compensation":
        raise ActionRejectedError("the rotation is already being compensated")
    if not can_abort(s):
        raise ActionRejectedError(
            "every server already serves the new certificate: only forward recovery is possible"
        )
    reason = f"cancelled by {action.by}: {action.reason}"
    s.hold = False
    if s.awaiting is not None and s.awaiting.watch_id is None:
        if "deadline" in s.timers:
            # What the command did is best learnt from its answer, but no later than its deadline.
            s.abort_requested = reason
            due = s.timers["deadline"].isoformat()
            t.note(f"will compensate once {s.awaiting.command} is answered, or at {due}")
            return
        abandon(t, "cancelled while no answer is expected any more")
    compensate(t, reason)


def on_approval(t: Transition, action: ApprovalGiven) -> None:
    s = t.s
    if not s.options.require_approval:
        raise ActionRejectedError("this rotation does not require an approval")
    if s.approval is not None:
        raise ActionRejectedError(f"already approved by {s.approval.by}")
    if s.swap_started:
        raise ActionRejectedError("the swap has already started")
    s.approval = Approval(by=action.by, at=t.now, note=action.note, principal=action.principal)
    t.note(f"approved by {action.by}")
    if isinstance(current_step(s), Gate) and s.pending_decision is None and not s.hold:
        check_gates(t)


_NEED_REASON = ("proceed", "abort", "compensate", "mark_done")


def on_replay(t: Transition, action: ReplayRequested) -> None:
    s = t.s
    awaiting = s.awaiting
    if awaiting is None or not (
        awaiting.answered_by(action.message_id) or awaiting.answered_by(action.causation_id)
    ):
        raise ActionRejectedError(
            f"the rotation does not wait for {action.message_type} {action.message_id} any more:"
            " replaying it would repeat a step it has moved past"
        )
    if s.pending_decision is not None and s.pending_decision.kind == "dead_letter":
        s.pending_decision = None
        set_record_status(s, "running")
    arm_deadline(t)
    t.note(f"{action.by} replayed the parked {action.message_type} ({action.dead_letter_id})")


_NEED_REASON = ("proceed", "abort", "compensate", "mark_done")


def on_decision(t: Transition, action: DecisionMade) -> None:
    s = t.s
    pending = s.pending_decision
    if pending is None:
        raise ActionRejectedError("no decision is pending")
    if action.decision not in pending.options:
        raise ActionRejectedError(
            f"{action.decision!r} is not possible here; choose one of {', '.join(pending.options)}"
        )
    if action.decision in _NEED_REASON and not action.reason.strip():
        raise ActionRejectedError(f"{action.decision} needs a reason")
    t.note(f"{action.by} decided {action.decision}: {action.reason}".rstrip(": "))
    if action.decision == "abort":
        compensate(t, f"aborted by {action.by}: {action.reason}")
        return
    if action.decision == "compensate":
        abandon(t, f"{action.by} decided to compensate")
        compensate(t, f"compensated by {action.by}: {action.reason}")
        return
    s.pending_decision = None
    if action.decision == "retry" and pending.kind == "verification_reenabled":
        redo(t, f"{action.by} decided to disable verification again")
        return
    if action.decision == "retry" and s.awaiting is not None:
        s.awaiting.resends = 0
        resend(t, f"{action.by} decided to retry")
        return
    if action.decision == "mark_done":
        s.awaiting = None
        finish_record(t, "done", f"marked done by {action.by}: {action.reason}")
        enter_next(t)
        return
    if action.decision == "extend":
        days = action.extend_days or s.options.max_wait_days
        if pending.kind == "step_failed":
            s.attempt_base = s.attempt
            set_record_status(s, "running")
            send_command(t)
            return
        cancel_watch(t)
        gate = current_step(s)
        if isinstance(gate, Gate):
            finish_record(t, "done", "waiting longer for the policy to reach the clients")
            s.step = gate.watches
            s.steps.append(new_record(t, step_named("forward", s.step)))
            # Entering the gate row restarted the attempt count; the re-watch carries on the
            # watch's own (one per watch sent), or it would reuse the first watch's id and the
            # client-monitor would answer that watch's record instead of starting a new one.
            s.attempt = sum(1 for w in s.waits if w.step == s.step)
        s.attempt_base = s.attempt
        s.timers["max_wait"] = t.now + timedelta(days=days)
        send_command(t)
        return
    # proceed
    cancel_watch(t)
    s.timers.pop("max_wait", None)
    step = current_step(s)
    if pending.kind == "verification_reenabled" or step.proceed_accepts_risk:
        s.risk_acceptance = RiskAcceptance(
            by=action.by, at=t.now, reason=action.reason, change_id=action.change_id,
            accepted_count=action.accepted_count, step=s.step, principal=action.principal,
        )  # fmt: skip
    if step.proceed_accepts_risk:
        s.propagation_gate_passed = True
        if isinstance(step, Gate):
            check_gates(t)
            return
    finish_record(t, "done", f"operator proceeded: {action.reason}")
    enter_next(t)
