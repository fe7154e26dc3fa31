"""What the client-monitor reacts to. Opening a watch only records it; the watch board (a
background loop) picks it up after the transaction commits and reports from then on."""

from __future__ import annotations

from certrotate_shared.consumer import Context, Handler
from certrotate_shared.envelope import Event, Message, message_class, utcnow
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    CancelPropagationWatch,
    PropagationWatchFailed,
)
from certrotate_shared.messages.retention import PurgeRotationRecords
from certrotate_shared.record_retention import record_request
from client_monitor.adapters import repository
from client_monitor.adapters.orm import retention_requests


def _refusal(message: AwaitPolicyPropagation) -> str | None:
    if not message.groups:
        return "the watch names no groups to wait for"
    if not 0.0 < message.threshold <= 1.0:
        return f"threshold must be in (0, 1], not {message.threshold}"
    if message.stale_horizon_days <= 0:
        return f"stale_horizon_days must be positive, not {message.stale_horizon_days}"
    return None


async def await_policy_propagation(message: Message, ctx: Context) -> Event | None:
    assert isinstance(message, AwaitPolicyPropagation)
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
    await repository.add_watch(session, ctx.envelope, now=utcnow())
    return None  # accepted: the outcome follows from the watch board


async def cancel_propagation_watch(message: Message, ctx: Context) -> Event | None:
    assert isinstance(message, CancelPropagationWatch)
    await repository.cancel_watch(ctx.uow.session, message.watch_id, now=utcnow())
    return None


async def purge_rotation_records(message: Message, ctx: Context) -> Event | None:
    """Kept until this service's own retention is over; the purge loop answers then."""
    assert isinstance(message, PurgeRotationRecords)
    await record_request(ctx.uow.session, retention_requests, ctx.envelope, now=utcnow())
    return None


HANDLERS: dict[type[Message], Handler] = {
    AwaitPolicyPropagation: await_policy_propagation,
    CancelPropagationWatch: cancel_propagation_watch,
    PurgeRotationRecords: purge_rotation_records,
}
