"""Liveness: every awaited answer has a deadline, and a command the saga stops waiting for
(cancelled while in flight) is assumed to have done everything it could have done.

A worker that crash-loops, or a message parked in the DLQ, must never leave a rotation
`running` with verification off and nobody told. On the deadline the saga re-sends the same
command with the same idempotency key (a worker that did the work answers its recorded
outcome, one that never saw it does it now); after the re-send budget it pauses with a
decision: retry, compensate (before the swap) or, where safe, mark the step done.

Marking done is offered only for restoring replication (step 7, and its compensation): it is
the last step of both tables, nothing after it reads what it reports, and an operator can
re-add a partnership in the console and see it in SEPM's replication status. Every other step
either tells the saga something it must know (partners, original verification values, backups,
served fingerprints) or is the very check that keeps clients from being orphaned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from certrotate_shared.envelope import Event
from orchestrator.domain.state import Abandoned, DecisionOption, SagaState
from orchestrator.domain.step_kinds import Invoke, Step
from orchestrator.domain.steps import step_named


def answer_deadline(s: SagaState, step: Step, now: datetime) -> datetime | None:
    """When the answer to the step's command is overdue; None for steps without a deadline."""
    limits = s.options.answer_deadlines
    if not isinstance(step, Invoke) or step.answer is None:
        return None
    if step.answer == "sepm_call":
        seconds = limits.sepm_call_seconds
    elif step.answer == "restore_replication":
        seconds = limits.restore_replication_seconds
    elif s.target.host_ops.driver == "manual":
        seconds = limits.manual_host_operation_seconds
    else:
        seconds = limits.host_operation_seconds
    return now + timedelta(seconds=seconds)


def may_resend(s: SagaState) -> bool:
    return s.awaiting is not None and s.awaiting.resends < s.options.answer_deadlines.resends


def no_answer_options(step: Step, *, can_abort: bool) -> list[DecisionOption]:
    options: list[DecisionOption] = ["retry"]
    if can_abort:
        options.append("compensate")
    if step.may_mark_done:
        options.append("mark_done")
    return options


def _row(name: str) -> Step:
    # Only forward commands are ever abandoned (a cancel or "compensate" is refused once
    # compensation runs), so their rows are the forward table's.
    return step_named("forward", name)


def abandon(s: SagaState, now: datetime) -> Abandoned | None:
    """Stop waiting for the awaited command; what it may have done is assumed done."""
    awaiting = s.awaiting
    if awaiting is None or awaiting.watch_id is not None:
        return None
    ids = [*awaiting.earlier_message_ids, *([awaiting.message_id] if awaiting.message_id else [])]
    entry = Abandoned(
        step=awaiting.step, command=awaiting.command, idempotency_key=awaiting.idempotency_key,
        message_ids=ids, server=awaiting.server, at=now,
    )  # fmt: skip
    s.abandoned.append(entry)
    row = _row(awaiting.step)
    if isinstance(row, Invoke) and row.abandoned is not None:
        row.abandoned(s)
    s.awaiting = None
    return entry


def servers_to_roll_back(s: SagaState) -> list[str]:
    """Newest first: every server touched, including one whose command was abandoned in flight
    by a row that is compensated (it may serve the new certificate; its rollback fails loudly
    until its backup is known)."""
    abandoned = {
        a.server
        for a in s.abandoned
        if a.server is not None and (row := _row(a.step)) and isinstance(row, Invoke)
        and row.compensation
    }  # fmt: skip
    return [
        p.name
        for p in reversed(s.servers)
        if (p.backup_ref or p.name in abandoned) and p.status in ("updated", "failed", "updating")
    ]


def late_answer(s: SagaState, causation_id: str | None, event: Event) -> str | None:
    """Record what an answer to an abandoned command tells; None if it answers none.

    It never moves the saga: it only adds what compensation must undo (a server updated after
    all, partners broken, original verification values)."""
    entry = next((a for a in s.abandoned if causation_id in a.message_ids), None)
    if entry is None:
        return None
    entry.answer = event.type_name()
    row = _row(entry.step)
    told = row.late(s, event) if isinstance(row, Invoke) and row.late is not None else None
    told = told or "nothing compensation must undo"
    return f"late {event.type_name()} for the abandoned {entry.command}: {told}"
