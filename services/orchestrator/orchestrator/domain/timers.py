"""What the saga's durable timers do when they fire: retry, deadline, maximum wait,
maintenance window and verification-exposure alert."""

from __future__ import annotations

from certrotate_shared.messages.orchestrator import VerificationExposureExceeded
from orchestrator.domain import liveness
from orchestrator.domain.inputs import (
    TimerFired,
)
from orchestrator.domain.state import (
    ExposureAlert,
)
from orchestrator.domain.step_kinds import Gate
from orchestrator.domain.transition import (
    Transition,
    abandon,
    can_abort,
    current_step,
    pause,
    resend,
    send_command,
)
from orchestrator.domain.walk import check_gates, compensate, pause_wait


def on_timer(t: Transition, fired: TimerFired) -> None:
    s = t.s
    if s.terminal or s.timers.get(fired.kind) != fired.due_at:
        t.decision.ignored = True
        t.note(f"ignored {fired.kind} timer: no longer set")
        return
    del s.timers[fired.kind]
    if fired.kind == "deadline":
        on_deadline(t)
    elif fired.kind == "retry":
        if s.awaiting is None and s.pending_decision is None and current_step(s).sends:
            send_command(t)
    elif fired.kind == "max_wait":
        wait = s.current_wait(s.step)
        if wait is not None and wait.outcome == "waiting":
            wait.outcome, wait.finished_at = "timed_out", t.now
        days = s.options.max_wait_days
        pause_wait(
            t, f"the policy has not reached every client after the maximum wait ({days:g} days)"
        )
    elif fired.kind == "window":
        step = current_step(s)
        if isinstance(step, Gate):
            check_gates(t)
        elif step.sends and s.awaiting is None and s.pending_decision is None:
            send_command(t)
    elif (
        fired.kind == "exposure"
        and s.verification_off_since is not None
        and s.verification_restored_at is None
    ):
        s.exposure_alert = ExposureAlert(
            at=t.now,
            verification_off_since=s.verification_off_since,
            limit_days=s.options.exposure_limit_days,
        )
        t.send(
            VerificationExposureExceeded(
                site=s.site,
                rotation_id=s.saga_id,
                verification_off_since=s.verification_off_since,
                limit_days=s.options.exposure_limit_days,
                step=s.step,
            )
        )
        t.note("certificate verification has been off longer than the exposure limit")


def on_deadline(t: Transition) -> None:
    s = t.s
    awaiting = s.awaiting
    if awaiting is None or s.pending_decision is not None:
        return
    why = f"no answer to {awaiting.command} by its deadline"
    if s.abort_requested and can_abort(s):
        abandon(t, why)
        compensate(t, s.abort_requested)
    elif liveness.may_resend(s):
        resend(t, why)
    else:
        options = liveness.no_answer_options(current_step(s), can_abort=can_abort(s))
        pause(t, "no_answer", f"{why} (re-sent {awaiting.resends} times)", options)
