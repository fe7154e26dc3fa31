"""What the client-monitor reacts to. Opening a watch only records it; the shared work runner
takes it once the transaction commits and the watch board scans and reports from then on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from certrotate_shared.clock import Clock
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Event, Message, message_class
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    CancelPropagationWatch,
    PropagationWatchFailed,
)
from certrotate_shared.messages.retention import PurgeRotationRecords
from certrotate_shared.record_retention import record_request
from certrotate_shared.work import WorkContext
from certrotate_shared.work_runner import LeasedWork
from client_monitor.adapters import repository
from client_monitor.adapters.orm import retention_requests
from client_monitor.service_layer.board import WatchBoard


def _refusal(message: AwaitPolicyPropagation) -> str | None:
    if not message.groups:
        return "the watch names no groups to wait for"
    if not 0.0 < message.threshold <= 1.0:
        return f"threshold must be in (0, 1], not {message.threshold}"
    if message.stale_horizon_days <= 0:
        return f"stale_horizon_days must be positive, not {message.stale_horizon_days}"
    return None


async def await_policy_propagation(
    message: AwaitPolicyPropagation, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    session = ctx.uow.session
    existing = await repository.get_watch(session, message.watch_id)
    if existing is not None:
        # The same watch asked for again (a new attempt): report how it ended, if it has.
        if existing.outcome_type and existing.outcome is not None:
            outcome = message_class(existing.outcome_type, 1).model_validate(existing.outcome)
            assert isinstance(outcome, Event)
            return outcome
        return None
    reason = _refusal(message)
    if reason is not None:
        return PropagationWatchFailed(
            site=message.site.site, watch_id=message.watch_id, reason=reason, retryable=False
        )
    await repository.add_watch(session, ctx.envelope, now=clock.now())
    ctx.uow.on_commit(work.wake)
    return None  # accepted: the outcome follows from the watch board


async def cancel_propagation_watch(
    message: CancelPropagationWatch, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    await repository.cancel_watch(ctx.uow.session, message.watch_id, now=clock.now())
    ctx.uow.on_commit(work.wake)  # the replica scanning it stops at once
    return None


async def purge_rotation_records(
    message: PurgeRotationRecords, ctx: Context, *, clock: Clock
) -> Event | None:
    """Kept until this service's own retention is over; the purge loop answers then."""
    await record_request(ctx.uow.session, retention_requests, ctx.envelope, now=clock.now())
    return None


async def watch_propagation(
    command: AwaitPolicyPropagation, ctx: WorkContext, *, board: WatchBoard
) -> datetime | None:
    """Scan the fleet and report until the watch closes."""
    return await board.watch(command, ctx)


# What the client-monitor reacts to (each handler's keyword-only parameters are injected by
# name in bootstrap) ...
HANDLERS: dict[type[Message], Callable[..., Awaitable[Event | None]]] = {
    AwaitPolicyPropagation: await_policy_propagation,
    CancelPropagationWatch: cancel_propagation_watch,
    PurgeRotationRecords: purge_rotation_records,
}

# ... and what performs the long-running one (certrotate_shared.work).
WORK: dict[type[Message], Callable[..., Awaitable[datetime | None]]] = {
    AwaitPolicyPropagation: watch_propagation,
}
