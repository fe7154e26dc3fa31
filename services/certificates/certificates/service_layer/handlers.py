"""Command handlers, and the performers of the long-running ones. Commands with side effects on
SEPM or a host become jobs (they take minutes): the handler records one, and the shared work
runner hands it to the performer WORK names. Purging is immediate."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from certificates.adapters import jobs as job_table
from certificates.adapters import store
from certificates.service_layer.jobs import (
    ServerChange,
    Verification,
    backup_deletion_job,
    server_certificate_job,
    verification_job,
)
from certrotate_shared.clock import Clock
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Event, Message
from certrotate_shared.messages.certificates import (
    CertificateBundlePurged,
    CheckCertificateVerification,
    DeleteServerBackup,
    PurgeCertificateBundle,
    RollbackServerCertificate,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.operator_tasks import (
    ConfirmOperatorTask,
)
from certrotate_shared.work_runner import LeasedWork

log = logging.getLogger(__name__)


async def queue_job(
    message: Verification | ServerChange, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    """Accepted: the work runner performs it once this transaction commits."""
    now = clock.now()
    await job_table.add_job(ctx.uow.session, ctx.envelope, message.idempotency_key, now)
    if isinstance(message, UpdateServerCertificate):
        await store.mark_referenced(ctx.uow.session, message.bundle_ref, now)
    ctx.uow.on_commit(work.wake)
    return None


async def purge_certificate_bundle(message: PurgeCertificateBundle, ctx: Context) -> Event | None:
    if not await store.delete_bundle(ctx.uow.session, message.bundle_ref):
        log.info("bundle %s was already gone", message.bundle_ref)
    return CertificateBundlePurged(bundle_ref=message.bundle_ref)


async def confirm_operator_task(
    message: ConfirmOperatorTask, ctx: Context, *, clock: Clock, work: LeasedWork
) -> Event | None:
    """A person says a host operation is done; the job runs again and checks by observation."""
    refused = await job_table.TASKS.confirm(message, ctx, now=clock.now(), resume=job_table.resume)
    ctx.uow.on_commit(work.wake)
    return refused


# What the certificates service reacts to (each handler's keyword-only parameters are injected
# by name in bootstrap) ...
HANDLERS: dict[type[Message], Callable[..., Awaitable[Event | None]]] = {
    SetCertificateVerification: queue_job,
    CheckCertificateVerification: queue_job,
    UpdateServerCertificate: queue_job,
    RollbackServerCertificate: queue_job,
    PurgeCertificateBundle: purge_certificate_bundle,
    ConfirmOperatorTask: confirm_operator_task,
}

# ... and what performs the long-running ones (certrotate_shared.work).
WORK: dict[type[Message], Callable[..., Awaitable[datetime | None]]] = {
    SetCertificateVerification: verification_job,
    CheckCertificateVerification: verification_job,
    UpdateServerCertificate: server_certificate_job,
    RollbackServerCertificate: server_certificate_job,
    # Queued by the retention purge (entrypoints/api.py), not by a message.
    DeleteServerBackup: backup_deletion_job,
}
