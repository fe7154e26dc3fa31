"""Command handlers: short, each reads what it needs and records what the worker must do.

InspectSite is answered at once (three reads). BreakReplication and RestoreReplication are
accepted here and carried out by their performers (WORK below; service_layer/breaking.py and
restoring.py) in their own transactions, under the shared lease: host operations can take
minutes (WinRM, a person), a restore waits for SEPM to replicate, and an intent must be
committed before a partner is deleted (see domain/partners.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from certrotate_shared.clock import Clock
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Event, Message
from certrotate_shared.messages.operator_tasks import (
    ConfirmOperatorTask,
)
from certrotate_shared.messages.replication import (
    BreakReplication,
    InspectSite,
    PartnerStatus,
    ReplicationBroken,
    ReplicationRestored,
    RestoreReplication,
    SiteInspected,
    SiteInspectionFailed,
)
from certrotate_shared.messages.retention import PurgeRotationRecords
from certrotate_shared.record_retention import record_request
from certrotate_shared.sepm.api import SepmError
from certrotate_shared.work_runner import LeasedWork
from replication.adapters import repository
from replication.adapters.orm import retention_requests
from replication.domain.partners import observe_partners
from replication.service_layer.breaking import break_partnerships
from replication.service_layer.connections import Connections
from replication.service_layer.restoring import restore_partnerships


async def inspect_site(message: InspectSite, ctx: Context, *, connections: Connections) -> Event:
    """Pre-flight: the site's version and its partners, as SEPM reports them now."""
    site = message.site
    try:
        async with connections.sepm(site) as sepm:
            version = await sepm.version()
            replicated = await sepm.is_replicated()
            partners = observe_partners(await sepm.replication_status())
    except SepmError as exc:
        return SiteInspectionFailed(site=site.site, reason=str(exc), retryable=exc.retryable)
    return SiteInspected(
        site=site.site,
        version=str(version.get("API_VERSION") or site.version),
        replicated=replicated or bool(partners),
        partners=[
            PartnerStatus(
                name=p.name, status_code=p.status_code, last_successful_run_time=p.last_success_ms
            )
            for p in partners.values()
        ],
    )


async def break_replication(
    message: BreakReplication, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    """Step 1: accepted; break_partnerships deletes them and reports ReplicationBroken."""
    if not message.partners:
        return ReplicationBroken(site=message.site.site, broken_partners=[])
    await _open(message, ctx, kind="break", now=clock.now())
    ctx.uow.on_commit(work.wake)
    return None


async def restore_replication(
    message: RestoreReplication, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    """Step 7: accepted; restore_partnerships re-adds, replicates and waits for SUCCEEDED."""
    if not message.partners:
        return ReplicationRestored(site=message.site.site, partners=[])
    await _open(message, ctx, kind="restore", now=clock.now())
    ctx.uow.on_commit(work.wake)
    return None


async def confirm_operator_task(
    message: ConfirmOperatorTask, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    """A person says a host operation is done; the operation's next pass checks by observation."""
    refused = await repository.TASKS.confirm(message, ctx, now=clock.now(), resume=repository.wake)
    ctx.uow.on_commit(work.wake)
    return refused


async def purge_rotation_records(
    message: PurgeRotationRecords, ctx: Context, *, clock: Clock
) -> Event | None:
    """Kept until this service's own retention is over; the purge loop answers then."""
    await record_request(ctx.uow.session, retention_requests, ctx.envelope, now=clock.now())
    return None


async def _open(
    message: BreakReplication | RestoreReplication, ctx: Context, *, kind: str, now: datetime
) -> None:
    await repository.open_operation(
        ctx.uow.session,
        envelope=ctx.envelope,
        kind=kind,
        site=message.site.site,
        op_key=message.idempotency_key,
        partners=message.partners,
        now=now,
    )


# What the replication service reacts to (each handler's keyword-only parameters are injected
# by name in bootstrap) ...
HANDLERS: dict[type[Message], Callable[..., Awaitable[Event | None]]] = {
    InspectSite: inspect_site,
    BreakReplication: break_replication,
    RestoreReplication: restore_replication,
    ConfirmOperatorTask: confirm_operator_task,
    PurgeRotationRecords: purge_rotation_records,
}

# ... and what performs the long-running ones (certrotate_shared.work).
WORK: dict[type[Message], Callable[..., Awaitable[datetime | None]]] = {
    BreakReplication: break_partnerships,
    RestoreReplication: restore_partnerships,
}
