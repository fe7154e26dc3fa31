"""Decisions of the rotation saga: pure functions of (state, input, now) -> (state, messages).

`steps.py` holds the table; this module walks it. Nothing here does I/O: the service layer
loads the state, calls `start_saga` or `decide`, and stores what comes back in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from certrotate_shared.envelope import Message
from certrotate_shared.messages.certificates import (
    CertificateBundlePurged,
    PurgeCertificateBundle,
)
from certrotate_shared.messages.client_monitor import (
    CancelPropagationWatch,
    PropagationProgressed,
    PropagationStalled,
)
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.messages.orchestrator import VerificationExposureExceeded
from orchestrator.domain import liveness, propagation_steps
from orchestrator.domain.backoff import retry_delay
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
from orchestrator.domain.state import (
    Approval,
    Awaiting,
    CertificateInfo,
    DecisionKind,
    DecisionOption,
    ExposureAlert,
    PendingDecision,
    PropagationWait,
    RiskAcceptance,
    RotationOptions,
    SagaState,
    ServerProgress,
    Status,
    StepRecord,
    StepStatus,
)
from orchestrator.domain.step_kinds import Gate, Invoke, PerServer, Refuted, Regressed, Watch
from orchestrator.domain.steps import TABLES, Step, risk_wait, step_index, step_named
from orchestrator.domain.window import is_open, next_opening


@dataclass
class Outgoing:
    message: Message
    # True for the command whose answer the saga now waits for (its id goes in the state).
    awaited: bool = False


@dataclass
class Decision:
    state: SagaState
    outgoing: list[Outgoing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored: bool = False

    def commands(self) -> list[Message]:
        return [o.message for o in self.outgoing]


class _Transition:
    def __init__(self, state: SagaState, now: datetime) -> None:
        self.s = state
        self.now = now
        self.decision = Decision(state=state)

    def send(self, message: Message, *, awaited: bool = False) -> None:
        self.decision.outgoing.append(Outgoing(message, awaited))

    def note(self, text: str) -> None:
        self.decision.notes.append(text)


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
    t = _Transition(state, now)
    _enter(t, "forward", 0)
    return _done(t)


def decide(state: SagaState, given: Input, now: datetime, *, in_place: bool = False) -> Decision:
    """The next state and messages after one event, timer or operator action.

    The given state is left as it was unless `in_place` (for a caller that loaded it only to
    decide and drops it on failure: it saves a deep copy per transition)."""
    t = _Transition(state if in_place else state.model_copy(deep=True), now)
    if isinstance(given, EventArrived):
        _on_event(t, given)
    elif isinstance(given, TimerFired):
        _on_timer(t, given)
    else:
        if t.s.terminal:
            raise ActionRejectedError(f"the rotation has ended ({t.s.status})")
        if isinstance(given, PauseRequested):
            _on_pause(t, given)
        elif isinstance(given, ResumeRequested):
            _on_resume(t, given)
        elif isinstance(given, CancelRequested):
            _on_cancel(t, given)
        elif isinstance(given, ApprovalGiven):
            _on_approval(t, given)
        elif isinstance(given, DecisionMade):
            _on_decision(t, given)
        elif isinstance(given, ReplayRequested):
            _on_replay(t, given)
    return _done(t)


def can_abort(s: SagaState) -> bool:
    """Abort means compensate; after the swap only forward recovery is possible."""
    return not s.terminal and s.phase == "forward" and not s.swap_done


def current_step(s: SagaState) -> Step:
    return step_named(s.phase, s.step)


def _done(t: _Transition) -> Decision:
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


# --- walking the table ---------------------------------------------------------------------


def _enter(t: _Transition, phase: str, index: int) -> None:
    s = t.s
    table = TABLES[phase]
    s.phase = "forward" if phase == "forward" else "compensation"
    while index < len(table):
        step = table[index]
        if step.skip is not None and step.skip(s):
            s.steps.append(_record(t, step, status="skipped", finished=True))
            index += 1
            continue
        s.step, s.attempt, s.attempt_base, s.server_index = step.name, 0, 0, 0
        s.steps.append(_record(t, step, server=_server_name(s, step)))
        if isinstance(step, Gate):
            _evaluate_gates(t)
            return
        if step.waits_for_propagation:
            s.timers["max_wait"] = t.now + timedelta(days=s.options.max_wait_days)
        _send(t)
        return
    if s.phase == "forward":
        _end(t, "completed", None)
    else:
        _end(t, "compensated", s.reason)


def _record(
    t: _Transition, step: Step, *, status: str = "running", finished: bool = False,
    server: str | None = None,
) -> StepRecord:  # fmt: skip
    return StepRecord(
        name=step.name,
        number=step.number,
        title=step.title,
        phase=t.s.phase,
        status=status,
        started_at=t.now,
        finished_at=t.now if finished else None,
        server=server,
    )


def _finish_record(t: _Transition, status: StepStatus, detail: str | None = None) -> None:
    record = t.s.current_step_record()
    if record is not None and record.finished_at is None:
        record.status = status
        record.finished_at = t.now
        if detail:
            record.detail = detail


def _server_name(s: SagaState, step: Step) -> str | None:
    return step.server(s) if isinstance(step, PerServer) else None


def _key(s: SagaState) -> str:
    step = current_step(s)
    name = f"{s.step}@{_server_name(s, step)}" if step.per_server else s.step
    if s.reenabled_findings:
        # Back at step 2 after the check found verification on: new keys, or the workers would
        # answer the first pass's recorded outcomes instead of doing the work again.
        name = f"{name}/{len(s.reenabled_findings) + 1}"
    return f"{s.saga_id}:{name}:{s.attempt}"


def _send(t: _Transition) -> None:
    """Send the current step's command (a new attempt), unless an operator holds the saga."""
    s = t.s
    step = current_step(s)
    s.awaiting = None
    s.timers.pop("retry", None)
    if s.hold:
        s.deferred = True
        t.note(f"held by an operator: {s.step} not sent until resumed")
        return
    s.deferred = False
    window = s.options.maintenance_window
    if isinstance(step, Invoke) and step.in_window and window and not is_open(window, t.now):
        s.timers["window"] = next_opening(window, t.now)
        s.gate_waiting_for = ["maintenance_window"]
        _set_record_status(s, "waiting")
        t.note(f"maintenance window closed; next opening {s.timers['window'].isoformat()}")
        return
    s.gate_waiting_for = []
    assert isinstance(step, Invoke)
    s.attempt += 1
    key = _key(s)
    if isinstance(step, Watch):
        groups = step.watched(s)
        s.waits.append(
            PropagationWait(
                step=s.step,
                watch_id=key,
                target_serials={g.group_id: g.target_serial for g in groups},
                started_at=t.now,
                deadline=s.timers.get("max_wait")
                or t.now + timedelta(days=s.options.max_wait_days),
            )
        )
    command = step.command(s, key, t.now)
    server = _server_name(s, step)
    s.awaiting = Awaiting(
        step=s.step,
        command=command.type_name(),
        idempotency_key=key,
        watch_id=key if step.waits_for_propagation else None,
        server=server,
    )
    if isinstance(step, PerServer) and server is not None and step.starting is not None:
        step.starting(s, server)
    record = s.current_step_record()
    if record is not None:
        record.attempts = s.attempt
        record.status = "running"
    t.send(command, awaited=True)
    _arm_deadline(t)


def _arm_deadline(t: _Transition) -> None:
    due = liveness.answer_deadline(t.s, current_step(t.s), t.now)
    if due is not None:
        t.s.timers["deadline"] = due
    else:
        t.s.timers.pop("deadline", None)


def _resend(t: _Transition, why: str) -> None:
    """The same command again, same idempotency key: a worker that did it answers its record."""
    s = t.s
    awaiting = s.awaiting
    step = current_step(s)
    assert awaiting is not None and isinstance(step, Invoke)
    if awaiting.message_id:
        awaiting.earlier_message_ids.append(awaiting.message_id)
    awaiting.message_id = None
    awaiting.resends += 1
    t.send(step.command(s, awaiting.idempotency_key, t.now), awaited=True)
    _set_record_status(s, "running")
    _arm_deadline(t)
    t.note(f"{why}; {awaiting.command} re-sent with the same idempotency key")


def _set_record_status(s: SagaState, status: StepStatus) -> None:
    record = s.current_step_record()
    if record is not None and record.finished_at is None:
        record.status = status


def _advance(t: _Transition) -> None:
    """The current step (or server) succeeded: go on to the next server or the next step."""
    s = t.s
    step = current_step(s)
    _finish_record(t, "done")
    if isinstance(step, PerServer):
        s.server_index += 1
        if s.server_index < len(step.servers(s)):
            s.attempt, s.attempt_base = 0, 0
            s.steps.append(_record(t, step, server=_server_name(s, step)))
            _send(t)
            return
        if step.finished is not None:
            step.finished(s)
    _enter_next(t)


def _enter_next(t: _Transition) -> None:
    _enter(t, t.s.phase, step_index(t.s.phase, t.s.step) + 1)


def _end(t: _Transition, status: Status, reason: str | None) -> None:
    s = t.s
    _finish_record(t, "done" if status == "completed" else "failed")
    _cancel_watch(t)
    s.status = status
    s.reason = reason
    s.awaiting = None
    s.pending_decision = None
    s.hold = False
    s.deferred = False
    s.gate_waiting_for = []
    s.timers = {}
    # The rotation is over either way: the uploaded bundle and its password must go.
    t.send(
        PurgeCertificateBundle(
            idempotency_key=f"{s.saga_id}:purge:1", bundle_ref=s.certificate.bundle_ref
        )
    )
    t.note(f"rotation {status}" + (f": {reason}" if reason else ""))


def _cancel_watch(t: _Transition) -> None:
    s = t.s
    if s.awaiting is not None and s.awaiting.watch_id is not None:
        t.send(
            CancelPropagationWatch(
                idempotency_key=f"{s.awaiting.watch_id}:cancel", watch_id=s.awaiting.watch_id
            )
        )
        wait = s.current_wait()
        if wait is not None and wait.outcome in ("waiting", "timed_out", "stalled"):
            wait.outcome = "cancelled" if wait.outcome == "waiting" else wait.outcome
            wait.finished_at = wait.finished_at or t.now
        s.awaiting = None


def _compensate(t: _Transition, reason: str) -> None:
    """Undo what was done, newest first; with nothing done the rotation simply failed."""
    s = t.s
    _cancel_watch(t)
    _finish_record(t, "failed", reason)
    s.awaiting = None
    for kind in ("retry", "max_wait", "window", "deadline"):
        s.timers.pop(kind, None)
    s.pending_decision = None
    s.abort_requested = None
    s.hold = False
    s.deferred = False
    s.gate_waiting_for = []
    s.reason = reason
    s.rollback_queue = liveness.servers_to_roll_back(s)
    if not s.rollback_queue and not s.verification_touched and not s.broken_partners:
        _end(t, "failed", f"{reason}; nothing was changed")
        return
    t.note(f"compensating: {reason}")
    _enter(t, "compensation", 0)


def _pause(t: _Transition, kind: DecisionKind, reason: str, options: list[DecisionOption]) -> None:
    s = t.s
    s.pending_decision = PendingDecision(
        kind=kind,
        step=s.step,
        reason=reason,
        options=options,
        since=t.now,
    )
    _set_record_status(s, "waiting")
    t.note(f"paused for an operator decision ({', '.join(options)}): {reason}")


def _pause_wait(t: _Transition, reason: str) -> None:
    step = current_step(t.s)
    kind: DecisionKind = step.stalled if isinstance(step, Watch) else "propagation_wait"
    options: list[DecisionOption] = ["extend", "proceed"]
    if can_abort(t.s):
        options.append("abort")
    _pause(t, kind, reason, options)


# --- events ------------------------------------------------------------------------------


def _matches(s: SagaState, arrived: EventArrived) -> bool:
    awaiting = s.awaiting
    if awaiting is None:
        return False
    if awaiting.answered_by(arrived.causation_id):
        return True
    watch_id = getattr(arrived.event, "watch_id", None)
    return awaiting.watch_id is not None and watch_id == awaiting.watch_id


def _on_event(t: _Transition, arrived: EventArrived) -> None:
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
            _compensate(t, s.abort_requested)
        else:
            _pause_wait(t, f"propagation stalled: {event.reason}")
        return
    if isinstance(step, Invoke) and isinstance(event, step.on_success.event):
        s.awaiting = None
        verdict = step.on_success.record(s, event, t.now)
        if isinstance(verdict, Regressed):
            _found_regressed(t, step, verdict)
        elif isinstance(verdict, Refuted):
            _fail_step(t, verdict.reason, retryable=verdict.retryable)
        elif s.abort_requested and can_abort(s):
            _compensate(t, s.abort_requested)
        else:
            _advance(t)
        return
    if isinstance(step, Invoke) and isinstance(event, step.on_failure.event):
        s.awaiting = None
        reason = step.on_failure.record(s, event, t.now)
        _fail_step(t, reason, retryable=bool(getattr(event, "retryable", False)))
        return
    t.decision.ignored = True
    t.note(f"ignored {name}: not an answer to {s.awaiting.command if s.awaiting else 'nothing'}")


def _fail_step(t: _Transition, reason: str, *, retryable: bool) -> None:
    s = t.s
    step = current_step(s)
    if s.abort_requested and can_abort(s):
        _compensate(t, s.abort_requested)
        return
    if step.waits_for_propagation and s.pending_decision is not None:
        t.note(f"the propagation watch ended ({reason}); the decision is still pending")
        return
    if retryable and _schedule_retry(t, reason):
        return
    if step.waits_for_propagation:
        _pause_wait(t, f"the propagation watch failed: {reason}")
    elif step.exhausted == "fail":
        _end(t, "failed", f"{step.title} failed: {reason}; nothing was changed")
    elif step.exhausted == "compensate":
        _compensate(t, f"{step.title} failed: {reason}")
    else:
        options: list[DecisionOption] = ["extend", "abort"] if can_abort(s) else ["extend"]
        if step.may_proceed:
            options.append("proceed")
        _pause(t, "step_failed", f"{step.title} failed: {reason}", options)


def _schedule_retry(t: _Transition, reason: str) -> bool:
    s = t.s
    policy = s.options.retry_for(s.step)
    used = s.attempt - s.attempt_base
    if used >= policy.max_attempts:
        return False
    delay = retry_delay(policy, used, _key(s))
    s.timers["retry"] = t.now + timedelta(seconds=delay)
    _set_record_status(s, "waiting")
    t.note(f"{s.step} attempt {s.attempt} failed ({reason}); retry in {delay:.0f} s")
    return True


# --- timers --------------------------------------------------------------------------------


def _on_timer(t: _Transition, fired: TimerFired) -> None:
    s = t.s
    if s.terminal or s.timers.get(fired.kind) != fired.due_at:
        t.decision.ignored = True
        t.note(f"ignored {fired.kind} timer: no longer set")
        return
    del s.timers[fired.kind]
    if fired.kind == "deadline":
        _on_deadline(t)
    elif fired.kind == "retry":
        if s.awaiting is None and s.pending_decision is None and current_step(s).sends:
            _send(t)
    elif fired.kind == "max_wait":
        wait = s.current_wait(s.step)
        if wait is not None and wait.outcome == "waiting":
            wait.outcome, wait.finished_at = "timed_out", t.now
        days = s.options.max_wait_days
        _pause_wait(
            t, f"the policy has not reached every client after the maximum wait ({days:g} days)"
        )
    elif fired.kind == "window":
        step = current_step(s)
        if isinstance(step, Gate):
            _evaluate_gates(t)
        elif step.sends and s.awaiting is None and s.pending_decision is None:
            _send(t)
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


def _on_deadline(t: _Transition) -> None:
    s = t.s
    awaiting = s.awaiting
    if awaiting is None or s.pending_decision is not None:
        return
    why = f"no answer to {awaiting.command} by its deadline"
    if s.abort_requested and can_abort(s):
        _abandon(t, why)
        _compensate(t, s.abort_requested)
    elif liveness.may_resend(s):
        _resend(t, why)
    else:
        options = liveness.no_answer_options(current_step(s), can_abort=can_abort(s))
        _pause(t, "no_answer", f"{why} (re-sent {awaiting.resends} times)", options)


def _abandon(t: _Transition, why: str) -> None:
    entry = liveness.abandon(t.s, t.now)
    if entry is not None:
        t.note(
            f"{why}: stopped waiting for {entry.command} ({entry.idempotency_key}); what it may"
            " have done is undone, and a late answer is recorded"
        )


def _on_dead_letter(t: _Transition, event: MessageDeadLettered) -> None:
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
        _abandon(t, what)
        _compensate(t, s.abort_requested)
        return
    # Nothing will answer a parked message: re-sending it blindly would only park it again.
    s.timers.pop("deadline", None)
    options = liveness.no_answer_options(current_step(s), can_abort=can_abort(s))
    _pause(t, "dead_letter", what, options)


def _found_regressed(t: _Transition, step: Invoke, verdict: Regressed) -> None:
    """What the step had seen done was undone (verification on again): no swap. Back to the
    step that does it, or a person decides."""
    t.note(verdict.note)
    if verdict.pause is not None:
        _pause(t, verdict.kind, verdict.pause, ["retry", "compensate", "proceed"])
        return
    _redo(t, verdict.redo)


def _redo(t: _Transition, why: str) -> None:
    s = t.s
    step = current_step(s)
    assert isinstance(step, Invoke) and step.redo_from is not None
    _finish_record(t, "failed", why)
    s.propagation_gate_passed = False
    # Accepted for a propagation reading that no longer holds (the history keeps it).
    s.risk_acceptance = None
    _enter(t, "forward", step_index("forward", step.redo_from))


# --- gates ---------------------------------------------------------------------------------


def gate_orphan_risk(s: SagaState) -> int | None:
    """Clients that would be cut off if the swap ran now (latest reading of the step-3 wait)."""
    wait = risk_wait(s)
    return wait.reading.orphan_risk if wait and wait.reading else None


def _evaluate_gates(t: _Transition) -> None:
    s = t.s
    if not s.propagation_gate_passed:
        # Only PolicyPropagated or an operator's "proceed" opens this gate.
        reason = "the verification-off policy has not been confirmed on the clients"
        _pause(t, "propagation_wait", reason, ["extend", "proceed", "abort"])
        return
    at_risk = gate_orphan_risk(s) or 0
    if s.risk_acceptance is None and at_risk > s.options.orphan_risk_budget:
        _pause(
            t,
            "orphan_risk",
            f"{at_risk} clients would be cut off by the swap (budget {s.options.orphan_risk_budget})",
            ["extend", "proceed", "abort"],
        )
        return
    waiting: list[str] = []
    if s.options.require_approval and s.approval is None:
        waiting.append("approval")
    window = s.options.maintenance_window
    if window is not None and not is_open(window, t.now):
        waiting.append("maintenance_window")
        s.timers["window"] = next_opening(window, t.now)
    s.gate_waiting_for = waiting
    if waiting:
        _set_record_status(s, "waiting")
        t.note(f"gates wait for: {', '.join(waiting)}")
        return
    s.timers.pop("window", None)
    _finish_record(t, "done")
    _enter_next(t)


# --- operator actions ----------------------------------------------------------------------


def _on_pause(t: _Transition, action: PauseRequested) -> None:
    s = t.s
    if s.hold:
        raise ActionRejectedError("the rotation is already paused")
    s.hold = True
    s.hold_reason = action.reason or f"paused by {action.by}"
    t.note(f"paused by {action.by}: no new command is sent until it is resumed")


def _on_resume(t: _Transition, action: ResumeRequested) -> None:
    s = t.s
    if not s.hold:
        if s.pending_decision is not None:
            options = ", ".join(s.pending_decision.options)
            raise ActionRejectedError(f"the rotation awaits a decision ({options}): use decide")
        raise ActionRejectedError("the rotation is not paused")
    s.hold, s.hold_reason = False, None
    t.note(f"resumed by {action.by}")
    if s.deferred and s.pending_decision is None:
        _send(t)
    elif isinstance(current_step(s), Gate) and s.pending_decision is None:
        _evaluate_gates(t)


def _on_cancel(t: _Transition, action: CancelRequested) -> None:
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
        _abandon(t, "cancelled while no answer is expected any more")
    _compensate(t, reason)


def _on_approval(t: _Transition, action: ApprovalGiven) -> None:
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
        _evaluate_gates(t)


_NEED_REASON = ("proceed", "abort", "compensate", "mark_done")


def _on_replay(t: _Transition, action: ReplayRequested) -> None:
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
        _set_record_status(s, "running")
    _arm_deadline(t)
    t.note(f"{action.by} replayed the parked {action.message_type} ({action.dead_letter_id})")


def _on_decision(t: _Transition, action: DecisionMade) -> None:
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
        _compensate(t, f"aborted by {action.by}: {action.reason}")
        return
    if action.decision == "compensate":
        _abandon(t, f"{action.by} decided to compensate")
        _compensate(t, f"compensated by {action.by}: {action.reason}")
        return
    s.pending_decision = None
    if action.decision == "retry" and pending.kind == "verification_reenabled":
        _redo(t, f"{action.by} decided to disable verification again")
        return
    if action.decision == "retry" and s.awaiting is not None:
        s.awaiting.resends = 0
        _resend(t, f"{action.by} decided to retry")
        return
    if action.decision == "mark_done":
        s.awaiting = None
        _finish_record(t, "done", f"marked done by {action.by}: {action.reason}")
        _enter_next(t)
        return
    if action.decision == "extend":
        days = action.extend_days or s.options.max_wait_days
        if pending.kind == "step_failed":
            s.attempt_base = s.attempt
            _set_record_status(s, "running")
            _send(t)
            return
        _cancel_watch(t)
        gate = current_step(s)
        if isinstance(gate, Gate):
            _finish_record(t, "done", "waiting longer for the policy to reach the clients")
            s.step = gate.watches
            s.steps.append(_record(t, step_named("forward", s.step)))
        s.attempt_base = s.attempt
        s.timers["max_wait"] = t.now + timedelta(days=days)
        _send(t)
        return
    # proceed
    _cancel_watch(t)
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
            _evaluate_gates(t)
            return
    _finish_record(t, "done", f"operator proceeded: {action.reason}")
    _enter_next(t)
