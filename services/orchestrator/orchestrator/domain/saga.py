"""Decisions of the rotation saga: pure functions of (state, input, now) -> (state, messages).

`steps.py` holds the table and each row's behaviour; `walk.py` walks it, `gates.py`,
`timers.py` and `operator_actions.py` handle their own inputs, and this module dispatches an
input and matches events to the command the saga waits for. Nothing here does I/O: the service
layer loads the state, calls `start_saga` or `decide`, and stores what comes back in one
transaction.
"""

from __future__ import annotations

from datetime import datetime

from certrotate_shared.messages.certificates import (
    CertificateBundlePurged,
)
from certrotate_shared.messages.client_monitor import (
    PropagationProgressed,
    PropagationStalled,
)
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from orchestrator.domain import liveness, propagation_steps
from orchestrator.domain.gates import gate_orphan_risk
from orchestrator.domain.inputs import (
    ActionRejectedError,
    ApprovalGiven,
    CancelRequested,
    DecisionMade,
    EventArrived,
    Input,
    PauseRequested,
    ReplayRequested,
    ResumeRequested,
    TimerFired,
)
from orchestrator.domain.operator_actions import (
    on_approval,
    on_cancel,
    on_decision,
    on_pause,
    on_replay,
    on_resume,
)
from orchestrator.domain.state import (
    CertificateInfo,
    RotationOptions,
    SagaState,
    ServerProgress,
)
from orchestrator.domain.step_kinds import Invoke, Refuted, Regressed
from orchestrator.domain.timers import on_timer
from orchestrator.domain.transition import (
    Decision,
    Outgoing,
    Transition,
    abandon,
    can_abort,
    current_step,
    pause,
)
from orchestrator.domain.walk import (
    advance,
    compensate,
    enter,
    fail_step,
    found_regressed,
    pause_wait,
)

# What other layers import from here.
__all__ = [
    "Decision", "Outgoing", "can_abort", "current_step", "decide", "gate_orphan_risk",
    "start_saga",
]  # fmt: skip


def start_saga(
    *,
    saga_id: str,
    target: SiteTarget,
    certificate: CertificateInfo,
    options: RotationOptions,
    now: datetime,
    requested_by: str = "",
    change_id: str | None = None,
    hold_reason: str | None = None,
) -> Decision:
    """A new rotation, pre-flight validation done: its first command is InspectSite (kept back
    while `hold_reason` holds it, as an operator's pause would, until it is resumed)."""
    state = SagaState(
        saga_id=saga_id,
        site=target.site,
        target=target,
        certificate=certificate,
        options=options,
        requested_by=requested_by,
        change_id=change_id,
        servers=[ServerProgress(name=s.name) for s in target.servers],
        hold=hold_reason is not None,
        hold_reason=hold_reason,
        created_at=now,
        updated_at=now,
    )
    t = Transition(state, now)
    enter(t, "forward", 0)
    return _done(t)


def decide(state: SagaState, given: Input, now: datetime, *, in_place: bool = False) -> Decision:
    """The next state and messages after one event, timer or operator action.

    The given state is left as it was unless `in_place` (for a caller that loaded it only to
    decide and drops it on failure: it saves a deep copy per transition)."""
    t = Transition(state if in_place else state.model_copy(deep=True), now)
    if isinstance(given, EventArrived):
        _on_event(t, given)
    elif isinstance(given, TimerFired):
        on_timer(t, given)
    else:
        if t.s.terminal:
            raise ActionRejectedError(f"the rotation has ended ({t.s.status})")
        if isinstance(given, PauseRequested):
            on_pause(t, given)
        elif isinstance(given, ResumeRequested):
            on_resume(t, given)
        elif isinstance(given, CancelRequested):
            on_cancel(t, given)
        elif isinstance(given, ApprovalGiven):
            on_approval(t, given)
        elif isinstance(given, DecisionMade):
            on_decision(t, given)
        elif isinstance(given, ReplayRequested):
            on_replay(t, given)
    return _done(t)


def _done(t: Transition) -> Decision:
    s = t.s
    s.updated_at = t.now
    if s.awaiting is None:
        s.timers.pop("deadline", None)
    if not s.terminal:
        if s.hold or s.pending_decision is not None:
            s.status = "paused"
        else:
            s.status = "compensating" if s.phase == "compensation" else "running"
    return t.decision


def _matches(s: SagaState, arrived: EventArrived) -> bool:
    awaiting = s.awaiting
    if awaiting is None:
        return False
    if awaiting.answered_by(arrived.causation_id):
        return True
    watch_id = getattr(arrived.event, "watch_id", None)
    return awaiting.watch_id is not None and watch_id == awaiting.watch_id


def _on_event(t: Transition, arrived: EventArrived) -> None:
    s = t.s
    event = arrived.event
    name = event.type_name()
    if isinstance(event, CertificateBundlePurged):
        t.note("the certificate bundle was purged")
        return
    if isinstance(event, MessageDeadLettered):
        _on_dead_letter(t, event)
        return
    late = liveness.late_answer(s, arrived.causation_id, event)
    if late is not None:
        t.note(late)
        return
    if s.terminal or not _matches(s, arrived):
        t.decision.ignored = True
        t.note(
            f"ignored {name}: it answers no command this rotation waits for (stale or duplicate)"
        )
        return
    step = current_step(s)
    if isinstance(event, PropagationProgressed):
        propagation_steps.read(s, event)
        return
    if s.pending_decision is not None and s.pending_decision.kind in ("no_answer", "dead_letter"):
        t.note(f"{name} answered {s.awaiting.command if s.awaiting else 'the step'} after all")
        s.pending_decision = None
    if isinstance(event, PropagationStalled):
        wait = propagation_steps.read(s, event)
        if wait is not None:
            wait.outcome, wait.finished_at, wait.detail = "stalled", t.now, event.reason
        if s.abort_requested and can_abort(s):
            compensate(t, s.abort_requested)
        else:
            pause_wait(t, f"propagation stalled: {event.reason}")
        return
    if isinstance(step, Invoke) and isinstance(event, step.on_success.event):
        s.awaiting = None
        verdict = step.on_success.record(s, event, t.now)
        if isinstance(verdict, Regressed):
            found_regressed(t, step, verdict)
        elif isinstance(verdict, Refuted):
            fail_step(t, verdict.reason, retryable=verdict.retryable)
        elif s.abort_requested and can_abort(s):
            compensate(t, s.abort_requested)
        else:
            advance(t)
        return
    if isinstance(step, Invoke) and isinstance(event, step.on_failure.event):
        s.awaiting = None
        reason = step.on_failure.record(s, event, t.now)
        fail_step(t, reason, retryable=bool(getattr(event, "retryable", False)))
        return
    t.decision.ignored = True
    t.note(f"ignored {name}: not an answer to {s.awaiting.command if s.awaiting else 'nothing'}")


def _on_dead_letter(t: Transition, event: MessageDeadLettered) -> None:
    s = t.s
    what = (
        f"{event.service} parked {event.message_type} after {event.attempts} attempts: "
        f"{event.error}"
    )
    awaiting = s.awaiting
    answers = event.envelope.get("causation_id")
    if (
        s.terminal
        or awaiting is None
        or not (awaiting.answered_by(event.message_id) or awaiting.answered_by(answers))
    ):
        t.note(f"{what} (not what the rotation waits for)")
        return
    if s.abort_requested and can_abort(s):
        abandon(t, what)
        compensate(t, s.abort_requested)
        return
    # Nothing will answer a parked message: re-sending it blindly would only park it again.
    s.timers.pop("deadline", None)
    options = liveness.no_answer_options(current_step(s), can_abort=can_abort(s))
    pause(t, "dead_letter", what, options)
