"""One transition of the rotation saga: the state it changes, the messages it sends, its
notes; and the moves every part of the saga makes with it (send the current step's command,
re-send it, keep the step records, pause for a decision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from certrotate_shared.envelope import Message
from certrotate_shared.messages.client_monitor import (
    CancelPropagationWatch,
)
from orchestrator.domain import liveness
from orchestrator.domain.state import (
    Awaiting,
    DecisionKind,
    DecisionOption,
    PendingDecision,
    PropagationWait,
    SagaState,
    StepRecord,
    StepStatus,
)
from orchestrator.domain.step_kinds import Invoke, PerServer, Watch
from orchestrator.domain.steps import Step, step_named
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


class Transition:
    def __init__(self, state: SagaState, now: datetime) -> None:
        self.s = state
        self.now = now
        self.decision = Decision(state=state)

    def send(self, message: Message, *, awaited: bool = False) -> None:
        self.decision.outgoing.append(Outgoing(message, awaited))

    def note(self, text: str) -> None:
        self.decision.notes.append(text)


def can_abort(s: SagaState) -> bool:
    """Abort means compensate; after the swap only forward recovery is possible."""
    return not s.terminal and s.phase == "forward" and not s.swap_done


def current_step(s: SagaState) -> Step:
    return step_named(s.phase, s.step)


def new_record(
    t: Transition, step: Step, *, status: str = "running", finished: bool = False,
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


def finish_record(t: Transition, status: StepStatus, detail: str | None = None) -> None:
    record = t.s.current_step_record()
    if record is not None and record.finished_at is None:
        record.status = status
        record.finished_at = t.now
        if detail:
            record.detail = detail


def set_record_status(s: SagaState, status: StepStatus) -> None:
    record = s.current_step_record()
    if record is not None and record.finished_at is None:
        record.status = status


def server_name(s: SagaState, step: Step) -> str | None:
    return step.server(s) if isinstance(step, PerServer) else None


def idempotency_key(s: SagaState) -> str:
    step = current_step(s)
    name = f"{s.step}@{server_name(s, step)}" if step.per_server else s.step
    if s.reenabled_findings:
        # Back at step 2 after the check found verification on: new keys, or the workers would
        # answer the first pass's recorded outcomes instead of doing the work again.
        name = f"{name}/{len(s.reenabled_findings) + 1}"
    return f"{s.saga_id}:{name}:{s.attempt}"


def send_command(t: Transition) -> None:
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
        set_record_status(s, "waiting")
        t.note(f"maintenance window closed; next opening {s.timers['window'].isoformat()}")
        return
    s.gate_waiting_for = []
    assert isinstance(step, Invoke)
    s.attempt += 1
    key = idempotency_key(s)
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
    server = server_name(s, step)
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
    arm_deadline(t)


def arm_deadline(t: Transition) -> None:
    due = liveness.answer_deadline(t.s, current_step(t.s), t.now)
    if due is not None:
        t.s.timers["deadline"] = due
    else:
        t.s.timers.pop("deadline", None)


def resend(t: Transition, why: str) -> None:
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
    set_record_status(s, "running")
    arm_deadline(t)
    t.note(f"{why}; {awaiting.command} re-sent with the same idempotency key")


def cancel_watch(t: Transition) -> None:
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


def pause(t: Transition, kind: DecisionKind, reason: str, options: list[DecisionOption]) -> None:
    s = t.s
    s.pending_decision = PendingDecision(
        kind=kind,
        step=s.step,
        reason=reason,
        options=options,
        since=t.now,
    )
    set_record_status(s, "waiting")
    t.note(f"paused for an operator decision ({', '.join(options)}): {reason}")


def abandon(t: Transition, why: str) -> None:
    entry = liveness.abandon(t.s, t.now)
    if entry is not None:
        t.note(
            f"{why}: stopped waiting for {entry.command} ({entry.idempotency_key}); what it may"
            " have done is undone, and a late answer is recorded"
        )
