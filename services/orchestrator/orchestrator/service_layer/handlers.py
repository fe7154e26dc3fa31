"""The orchestrator reacts to events only: each advances the saga it belongs to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from certrotate_shared.clock import Clock
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Event, Message
from certrotate_shared.messages.certificates import (
    CertificateBundlePurged,
    CertificateVerificationChecked,
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    ServerBackupDeleted,
    ServerBackupDeletionFailed,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
)
from certrotate_shared.messages.client_monitor import (
    PolicyPropagated,
    PropagationProgressed,
    PropagationStalled,
    PropagationWatchFailed,
)
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.messages.operator_tasks import (
    OperatorTaskRequested,
    OperatorTaskVerificationFailed,
)
from certrotate_shared.messages.replication import (
    ReplicationBreakFailed,
    ReplicationBroken,
    ReplicationRestored,
    ReplicationRestoreFailed,
    SiteInspected,
    SiteInspectionFailed,
)
from certrotate_shared.messages.retention import RotationRecordsPurged
from orchestrator.domain.history import EventReceived
from orchestrator.domain.inputs import EventArrived
from orchestrator.service_layer import dead_letters, tasks
from orchestrator.service_layer.deps import TimerAlarm
from orchestrator.service_layer.transitions import advance, record_history


async def advance_saga(
    message: Event, ctx: Context, *, clock: Clock, alarm: TimerAlarm
) -> Event | None:
    """A worker's event: the saga decides its next step."""
    envelope = ctx.envelope
    arrived = EventArrived(message, str(envelope.message_id), envelope.causation_id)
    decision = await advance(ctx.uow, envelope.saga_id, arrived, clock.now(), cause=envelope)
    if decision is not None and not decision.ignored:
        tasks.close_tasks_answered_by(ctx.uow, envelope.causation_id)
        if decision.state.timers:
            alarm.scheduled(decision.state.timers.values())
    return None


async def surface_dead_letter(
    message: MessageDeadLettered, ctx: Context, *, clock: Clock, alarm: TimerAlarm
) -> Event | None:
    """A consumer parked a message: keep it for the operator and tell its rotation."""
    await dead_letters.record_dead_letter(
        ctx.uow.session, message, saga_id=ctx.envelope.saga_id, now=clock.now()
    )
    return await advance_saga(message, ctx, clock=clock, alarm=alarm)


async def record_operator_task(
    message: OperatorTaskRequested, ctx: Context, *, clock: Clock
) -> Event | None:
    """A worker needs a person: show the task in the API until the worker's answer comes."""
    envelope = ctx.envelope
    now = clock.now()
    await ctx.uow.flush_deferred()  # tasks closed earlier in this batch stay closed first
    await tasks.record_task(
        ctx.uow.session, message, saga_id=envelope.saga_id, causation_id=envelope.causation_id,
        now=now,
    )  # fmt: skip
    _history(ctx, now, message)
    return None


async def reopen_operator_task(
    message: OperatorTaskVerificationFailed, ctx: Context, *, clock: Clock
) -> Event | None:
    """The worker could not verify what the operator confirmed: the task is open again."""
    await ctx.uow.flush_deferred()  # tasks closed earlier in this batch stay closed first
    await tasks.reopen_task(ctx.uow.session, message.task_id, message.reason)
    _history(ctx, clock.now(), message)
    return None


async def record_retention_outcome(message: Event, ctx: Context, *, clock: Clock) -> Event | None:
    """After an ended rotation's retention, what a worker deleted of it (or could not) goes
    into its history: the record an auditor reads says where each piece went, and when."""
    await ctx.uow.flush_deferred()  # tasks closed earlier in this batch stay closed first
    tasks.close_tasks_answered_by(ctx.uow, ctx.envelope.causation_id)  # a manual deletion
    _history(ctx, clock.now(), message)
    return None


def _history(ctx: Context, now: datetime, message: Event) -> None:
    record_history(
        ctx.uow,
        ctx.envelope.saga_id,
        [
            EventReceived(
                at=now,
                type=message.type_name(),
                message_id=str(ctx.envelope.message_id),
                causation_id=ctx.envelope.causation_id,
                payload=message.model_dump(mode="json"),
            )
        ],
    )


# What the orchestrator reacts to (each handler's keyword-only parameters are injected by name
# in bootstrap).
HANDLERS: dict[type[Message], Callable[..., Awaitable[Event | None]]] = {
    SiteInspected: advance_saga,
    SiteInspectionFailed: advance_saga,
    ReplicationBroken: advance_saga,
    ReplicationBreakFailed: advance_saga,
    CertificateVerificationSet: advance_saga,
    CertificateVerificationFailed: advance_saga,
    CertificateVerificationChecked: advance_saga,
    CertificateVerificationCheckFailed: advance_saga,
    PropagationProgressed: advance_saga,
    PolicyPropagated: advance_saga,
    PropagationStalled: advance_saga,
    PropagationWatchFailed: advance_saga,
    ServerCertificateUpdated: advance_saga,
    ServerCertificateUpdateFailed: advance_saga,
    ServerCertificateRolledBack: advance_saga,
    ServerCertificateRollbackFailed: advance_saga,
    ReplicationRestored: advance_saga,
    ReplicationRestoreFailed: advance_saga,
    CertificateBundlePurged: advance_saga,
    MessageDeadLettered: surface_dead_letter,
    OperatorTaskRequested: record_operator_task,
    OperatorTaskVerificationFailed: reopen_operator_task,
    ServerBackupDeleted: record_retention_outcome,
    ServerBackupDeletionFailed: record_retention_outcome,
    RotationRecordsPurged: record_retention_outcome,
}
