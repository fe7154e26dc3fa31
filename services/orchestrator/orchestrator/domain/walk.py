"""Walking the table: enter a row (or skip it), go on to the next server or row, fail a step
(retry, compensate, pause, or end), redo from an earlier row, and end the rotation."""

from __future__ import annotations

from datetime import timedelta

from certrotate_shared.messages.certificates import (
    PurgeCertificateBundle,
)
from orchestrator.domain import gates, liveness
from orchestrator.domain.backoff import retry_delay
from orchestrator.domain.state import (
    DecisionKind,
    DecisionOption,
    Status,
)
from orchestrator.domain.step_kinds import Gate, Invoke, PerServer, Regressed, Watch
from orchestrator.domain.steps import TABLES, step_index
from orchestrator.domain.transition import (
    Transition,
    can_abort,
    cancel_watch,
    current_step,
    finish_record,
    idempotency_key,
    new_record,
    pause,
    send_command,
    server_name,
    set_record_status,
)


def enter(t: Transition, phase: str, index: int) -> None:
    s = t.s
    table = TABLES[phase]
    s.phase = "forward" if phase == "forward" else "compensation"
    while index < len(table):
        step = table[index]
        if step.skip is not None and step.skip(s):
            s.steps.append(new_record(t, step, status="skipped", finished=True))
            index += 1
            continue
        s.step, s.attempt, s.attempt_base, s.server_index = step.name, 0, 0, 0
        # A command an operator's hold kept back was the previous row's: resuming must not
        # send it from this one (a gate has none; a command row defers its own if held).
        s.deferred = False
        s.steps.append(new_record(t, step, server=server_name(s, step)))
        if isinstance(step, Gate):
            check_gates(t)
            return
        if step.waits_for_propagation:
            s.timers["max_wait"] = t.now + timedelta(days=s.options.max_wait_days)
        send_command(t)
        return
    if s.phase == "forward":
        end(t, "completed", None)
    else:
        end(t, "compensated", s.reason)


def enter_next(t: Transition) -> None:
    enter(t, t.s.phase, step_index(t.s.phase, t.s.step) + 1)


def advance(t: Transition) -> None:
    """The current step (or server) succeeded: go on to the next server or the next step."""
    s = t.s
    step = current_step(s)
    finish_record(t, "done")
    if isinstance(step, PerServer):
        s.server_index += 1
        if s.server_index < len(step.servers(s)):
            s.attempt, s.attempt_base = 0, 0
            s.steps.append(new_record(t, step, server=server_name(s, step)))
            send_command(t)
            return
        if step.finished is not None:
            step.finished(s)
    enter_next(t)


def end(t: Transition, status: Status, reason: str | None) -> None:
    s = t.s
    finish_record(t, "done" if status == "completed" else "failed")
    cancel_watch(t)
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


def compensate(t: Transition, reason: str) -> None:
    """Undo what was done, newest first; with nothing done the rotation simply failed."""
    s = t.s
    cancel_watch(t)
    finish_record(t, "failed", reason)
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
        end(t, "failed", f"{reason}; nothing was changed")
        return
    t.note(f"compensating: {reason}")
    enter(t, "compensation", 0)


def pause_wait(t: Transition, reason: str) -> None:
    step = current_step(t.s)
    kind: DecisionKind = step.stalled if isinstance(step, Watch) else "propagation_wait"
    options: list[DecisionOption] = ["extend", "proceed"]
    if can_abort(t.s):
        options.append("abort")
    pause(t, kind, reason, options)


def fail_step(t: Transition, reason: str, *, retryable: bool) -> None:
    s = t.s
    step = current_step(s)
    if s.abort_requested and can_abort(s):
        compensate(t, s.abort_requested)
        return
    if step.waits_for_propagation and s.pending_decision is not None:
        t.note(f"the propagation watch ended ({reason}); the decision is still pending")
        return
    if retryable and schedule_retry(t, reason):
        return
    if step.waits_for_propagation:
        pause_wait(t, f"the propagation watch failed: {reason}")
    elif step.exhausted == "fail":
        end(t, "failed", f"{step.title} failed: {reason}; nothing was changed")
    elif step.exhausted == "compensate":
        compensate(t, f"{step.title} failed: {reason}")
    else:
        options: list[DecisionOption] = ["extend", "abort"] if can_abort(s) else ["extend"]
        if step.may_proceed:
            options.append("proceed")
        pause(t, "step_failed", f"{step.title} failed: {reason}", options)


def schedule_retry(t: Transition, reason: str) -> bool:
    s = t.s
    policy = s.options.retry_for(s.step)
    used = s.attempt - s.attempt_base
    if used >= policy.max_attempts:
        return False
    delay = retry_delay(policy, used, idempotency_key(s))
    s.timers["retry"] = t.now + timedelta(seconds=delay)
    set_record_status(s, "waiting")
    t.note(f"{s.step} attempt {s.attempt} failed ({reason}); retry in {delay:.0f} s")
    return True


def found_regressed(t: Transition, step: Invoke, verdict: Regressed) -> None:
    """What the step had seen done was undone (verification on again): no swap. Back to the
    step that does it, or a person decides."""
    t.note(verdict.note)
    if verdict.pause is not None:
        pause(t, verdict.kind, verdict.pause, ["retry", "compensate", "proceed"])
        return
    redo(t, verdict.redo)


def redo(t: Transition, why: str) -> None:
    s = t.s
    step = current_step(s)
    assert isinstance(step, Invoke) and step.redo_from is not None
    finish_record(t, "failed", why)
    s.propagation_gate_passed = False
    # Accepted for a propagation reading that no longer holds (the history keeps it).
    s.risk_acceptance = None
    enter(t, "forward", step_index("forward", step.redo_from))


def check_gates(t: Transition) -> None:
    """At the gates: go on to the swap once every gate is open."""
    if gates.evaluate(t):
        finish_record(t, "done")
        enter_next(t)
