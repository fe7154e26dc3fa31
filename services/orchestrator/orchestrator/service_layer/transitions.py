"""One saga transition = one transaction: load, decide, emit, save with a version check."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from certrotate_shared import tracing
from certrotate_shared.envelope import Command, Envelope
from certrotate_shared.logs import bind_log_fields, current_log_fields, log_context
from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters import saga_saves
from orchestrator.adapters.repository import SagaRepository
from orchestrator.domain.history import (
    AlertRaised,
    CommandSent,
    EventIgnored,
    EventReceived,
    HistoryEntry,
    Noted,
    OperatorActed,
    TimerWentOff,
)
from orchestrator.domain.inputs import EventArrived, Input, TimerFired
from orchestrator.domain.saga import Decision, decide
from orchestrator.domain.state import SagaState
from orchestrator.domain.subscriptions import Marks, marks_of
from orchestrator.service_layer import trust
from orchestrator.service_layer.callbacks import record_transition
from orchestrator.service_layer.metrics import first_open_step, observe_ended_steps

log = logging.getLogger(__name__)


async def advance(
    uow: UnitOfWork,
    saga_id: str,
    given: Input,
    now: datetime,
    *,
    cause: Envelope | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
    loaded: tuple[SagaState, int] | None = None,
) -> Decision | None:
    """Apply one input to a saga; None if there is no such saga (not ours).

    `loaded`: the saga as just read in this transaction (state, version), to skip re-reading."""
    if loaded is None:
        repo = SagaRepository(uow.session)
        if len(uow.batch) > 1:  # the batch's sagas in one round trip, not one each
            # A generator: read once per transaction, not a set of the batch per message.
            await repo.read_ahead(e.saga_id for e in uow.batch)
        loaded = await repo.get(saga_id)
    if loaded is None:
        return None
    state, version = loaded
    # Whatever handles this input (a message, a timer, a request) scoped a log_context.
    bind_log_fields(rotation_id=saga_id, site=state.site, step=state.step)
    timers_before = dict(state.timers)
    before = marks_of(state)
    open_step = first_open_step(state)
    before_step, before_status = state.step, state.status
    attributes = {
        "certrotate.rotation_id": saga_id,
        "certrotate.step": state.step,
        "certrotate.input": given.event.type_name() if isinstance(given, EventArrived) else None,
    }
    # The commands it sends are children of this span (their headers carry it on).
    # A timer has no message to carry the trace on: it continues the saga's last transition's.
    parent = state.trace_context if isinstance(given, TimerFired) else None
    with tracing.span(
        f"saga transition {type(given).__name__}", parent=parent or None, attributes=attributes
    ) as span:
        # The loaded state is ours alone (a failure rolls the transaction back and drops it).
        decision = decide(state, given, now, in_place=True)
        await persist(
            uow,
            decision,
            version=version,
            cause=cause,
            entry=_input_entry(given, decision, now, actor, detail),
            timers_before=timers_before,
            before=before,
        )
        if span is not None:
            span.set_attribute("certrotate.step_after", decision.state.step)
    observe_ended_steps(uow, decision.state, open_step)
    _log_progress(uow, before_step, before_status, decision.state)
    return decision


def _log_progress(uow: UnitOfWork, step_before: str, status_before: str, state: SagaState) -> None:
    """One line per step a rotation enters or state it takes, once committed: what an operator
    reads to follow it, with the rotation's ids bound by log_context."""
    if state.step == step_before and state.status == status_before:
        return
    step, status, reason, ended = state.step, state.status, state.reason, state.terminal
    # A batch commits after its messages' log contexts closed: keep this one's fields.
    fields = current_log_fields()

    def note() -> None:
        with log_context(**fields):
            if ended:
                log.info(
                    "rotation %s after %s%s", status, step_before, f": {reason}" if reason else ""
                )
            else:
                log.info("rotation at %s (%s), from %s", step, status, step_before)

    uow.on_commit(note)


async def persist(
    uow: UnitOfWork,
    decision: Decision,
    *,
    version: int | None,
    cause: Envelope | None,
    entry: HistoryEntry | None,
    timers_before: dict[str, datetime] | None = None,
    before: Marks | None = None,
) -> None:
    """Outbox rows, history, saga row, timers and callbacks, in the caller's transaction.

    `timers_before`: the saga's timers as loaded (so as stored in the timers table, which
    mirrors them); when they did not change the table is left alone."""
    state = decision.state
    repo = SagaRepository(uow.session)
    now = state.updated_at
    if tracing.enabled():
        state.trace_context = tracing.current_headers()
    entries: list[HistoryEntry] = [entry] if entry else []
    for out in decision.outgoing:
        envelope = uow.emit(out.message, saga_id=state.saga_id, causation=cause)
        if out.awaited and state.awaiting is not None:
            state.awaiting.message_id = str(envelope.message_id)
        sent = CommandSent if isinstance(out.message, Command) else AlertRaised
        entries.append(
            sent(
                at=now,
                type=envelope.type,
                step=state.step,
                message_id=str(envelope.message_id),
                causation_id=envelope.causation_id,
                payload=_without_site_target(envelope.payload),
            )
        )
    entries += [Noted(at=now, step=state.step, text=n) for n in decision.notes]
    if version is None:
        await repo.add(state)
    else:
        # PostgreSQL: written with the batch's other saves in one statement (saga_saves).
        if not await saga_saves.save_later(uow, state, version):
            await repo.save(state, version)
        if state.terminal:  # frees the site (and its farm); carries the new trust
            await trust.rotation_ended(uow.session, state)
    if timers_before is None or timers_before != state.timers:
        sync_timers(uow, state)
    record_history(uow, state.saga_id, entries)
    await record_transition(uow, before, decision)


_HISTORY = "orchestrator.saga_history"
_TIMERS = "orchestrator.timers"


def sync_timers(uow: UnitOfWork, state: SagaState) -> None:
    """Queue the saga's timers; before the transaction commits the timers table is made to
    mirror the last queued timers of every saga, in two statements for the whole batch."""
    queued: dict[str, dict[str, datetime]] = uow.session.info.setdefault(_TIMERS, {})
    queued[state.saga_id] = dict(state.timers)

    async def flush() -> None:
        await SagaRepository(uow.session).replace_timers(uow.session.info.pop(_TIMERS, {}))

    uow.defer(_TIMERS, flush)


def record_history(uow: UnitOfWork, saga_id: str, entries: list[HistoryEntry]) -> None:
    """Queue history rows; the transaction writes all it queued in one statement (in order)
    just before it commits, so a batch of transitions costs one history round trip."""
    if not entries:
        return
    queued: list[tuple[str, list[dict[str, Any]]]] = uow.session.info.setdefault(_HISTORY, [])
    queued.append((saga_id, [e.row() for e in entries]))

    async def flush() -> None:
        await SagaRepository(uow.session).record_many(uow.session.info.pop(_HISTORY, []))

    uow.defer(_HISTORY, flush)


def _without_site_target(payload: dict[str, Any]) -> dict[str, Any]:
    # The site target (trust PEMs, every server) is the same in every command: name it only.
    site = payload.get("site")
    if isinstance(site, dict):
        return {**payload, "site": site.get("site")}
    return payload


def _input_entry(
    given: Input,
    decision: Decision,
    now: datetime,
    actor: str | None,
    detail: dict[str, Any] | None,
) -> HistoryEntry:
    step = decision.state.step
    if isinstance(given, EventArrived):
        received = EventIgnored if decision.ignored else EventReceived
        return received(
            at=now, type=given.event.type_name(), step=step, message_id=given.message_id,
            causation_id=given.causation_id, payload=given.event.model_dump(mode="json"),
        )  # fmt: skip
    if isinstance(given, TimerFired):
        return TimerWentOff(
            at=now, type=given.kind, step=step, due_at=given.due_at, ignored=decision.ignored
        )
    body = {k: v for k, v in vars(given).items() if k != "by"}
    return OperatorActed(
        at=now, type=type(given).__name__, step=step, actor=actor or getattr(given, "by", None),
        detail={**body, **(detail or {})},
    )  # fmt: skip
