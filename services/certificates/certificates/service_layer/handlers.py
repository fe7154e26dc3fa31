"""Command handlers. Commands with side effects on SEPM or a host become jobs (they take
minutes); the job runner reports their outcome. Purging is immediate."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from certificates.adapters import jobs as job_table
from certificates.adapters import store
from certificates.service_layer.dependencies import Dependencies
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Command, Event, Message
from certrotate_shared.messages.certificates import (
    CertificateBundlePurged,
    CheckCertificateVerification,
    PurgeCertificateBundle,
    RollbackServerCertificate,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.operator_tasks import (
    ConfirmOperatorTask,
    OperatorTaskVerificationFailed,
)

log = logging.getLogger(__name__)


async def queue_job(message: Message, ctx: Context, deps: Dependencies) -> Event | None:
    """Set/CheckCertificateVerification, UpdateServerCertificate, RollbackServerCertificate."""
    assert isinstance(message, Command)
    now = deps.clock.now()
    await job_table.add_job(ctx.uow.session, ctx.envelope, message.idempotency_key, now)
    if isinstance(message, UpdateServerCertificate):
        await store.mark_referenced(ctx.uow.session, message.bundle_ref, now)
    deps.wake_jobs()
    return None


async def purge_certificate_bundle(
    message: Message, ctx: Context, deps: Dependencies
) -> Event | None:
    assert isinstance(message, PurgeCertificateBundle)
    if not await store.delete_bundle(ctx.uow.session, message.bundle_ref):
        log.info("bundle %s was already gone", message.bundle_ref)
    return CertificateBundlePurged(bundle_ref=message.bundle_ref)


async def confirm_operator_task(message: Message, ctx: Context, deps: Dependencies) -> Event | None:
    assert isinstance(message, ConfirmOperatorTask)
    job = await job_table.job_for_task(ctx.uow.session, message.task_id)
    if job is None:
        return OperatorTaskVerificationFailed(
            task_id=message.task_id, reason="the certificates service has no such operator task"
        )
    if job.status != job_table.AWAITING_OPERATOR:
        log.info("task %s confirmed again while its job is %s", message.task_id, job.status)
        return None
    log.info("task %s confirmed by %s; verifying", message.task_id, message.confirmed_by)
    await job_table.resume_after_confirmation(
        ctx.uow.session, job, message.task_id, deps.clock.now()
    )
    deps.wake_jobs()
    return None


HANDLERS: dict[type[Message], Callable[..., Awaitable[Event | None]]] = {
    SetCertificateVerification: queue_job,
    CheckCertificateVerification: queue_job,
    UpdateServerCertificate: queue_job,
    RollbackServerCertificate: queue_job,
    PurgeCertificateBundle: purge_certificate_bundle,
    ConfirmOperatorTask: confirm_operator_task,
}
