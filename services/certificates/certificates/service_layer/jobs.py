"""The certificates service's long-running commands, as performers of the shared work runner
(certrotate_shared.work; the WORK table in handlers.py names them): each runs its command to its
outcome, then emits it and records it under the command's idempotency key in one transaction.

A job that needs a person (manual host operations) emits OperatorTaskRequested and waits;
the operator's confirmation queues it again with that task counted as done, and whatever the
job then observes decides between the original outcome and OperatorTaskVerificationFailed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from certificates.adapters import jobs as job_table
from certificates.adapters.store import SqlCertificateStore
from certificates.service_layer.backup_retention import delete_server_backup
from certificates.service_layer.dependencies import Dependencies
from certificates.service_layer.restart_plan import sepm_version_reader
from certificates.service_layer.served_certificate import Verifier
from certificates.service_layer.server_certificate import (
    rollback_server_certificate,
    update_server_certificate,
)
from certificates.service_layer.verification import perform_verification, verification_failed
from certrotate_shared import site_directory
from certrotate_shared.envelope import Event, Message
from certrotate_shared.failures import describe, typed_failure
from certrotate_shared.hostops import HostOperationError, ManualTaskPending, OperatorTask
from certrotate_shared.messages.certificates import (
    CertificateVerificationFailed,
    CheckCertificateVerification,
    DeleteServerBackup,
    RollbackServerCertificate,
    ServerCertificateRollbackFailed,
    ServerCertificateUpdateFailed,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.sepm import SepmError
from certrotate_shared.work import GiveUp, WorkContext

log = logging.getLogger(__name__)

FAILURES = (
    CertificateVerificationFailed,
    ServerCertificateUpdateFailed,
    ServerCertificateRollbackFailed,
)
Verification = SetCertificateVerification | CheckCertificateVerification
ServerChange = UpdateServerCertificate | RollbackServerCertificate


def _verifier(deps: Dependencies) -> Verifier:
    settings = deps.settings
    return Verifier(
        probe=deps.probe, timeout_s=settings.verify_timeout_s, interval_s=settings.verify_interval_s
    )


def _store(ctx: WorkContext, deps: Dependencies) -> SqlCertificateStore:
    return SqlCertificateStore(ctx.runtime.sessions, deps.box, deps.clock)


async def verification_job(
    command: Verification, ctx: WorkContext, *, deps: Dependencies
) -> datetime | None:
    """Steps 2 and 5 (and the re-read before the swap): every owning group's setting."""
    await _job(command, ctx, deps, _verification)
    return None


async def server_certificate_job(
    command: ServerChange, ctx: WorkContext, *, deps: Dependencies
) -> datetime | None:
    """Step 4 and its rollback, one server: backup, install, restart, verify what is served."""
    await _job(command, ctx, deps, _server_certificate)
    return None


async def backup_deletion_job(
    command: DeleteServerBackup, ctx: WorkContext, *, deps: Dependencies
) -> datetime | None:
    """Retention: a rotation's backup leaves its server's host (backup_retention.py). The
    command names its site by name: the site is resolved from this service's own records."""
    job: job_table.Job = ctx.work.details
    async with ctx.uow() as uow:
        done_by_person = await job_table.TASKS.confirmed(uow.session, job.job_id)
    try:
        result: Event | OperatorTask = await delete_server_backup(
            command,
            saga_id=job.saga_id,
            store=_store(ctx, deps),
            resolve_site=deps.published_site_named,
            host_operations=deps.host_operations,
            confirmed_tasks=done_by_person,
        )
    except ManualTaskPending as pending:
        result = pending.task
    await _conclude(ctx, deps, result)
    return None


# (the command as published, its work, the dependencies, the tasks a person has done)
Procedure = Callable[[Any, WorkContext, Dependencies, list[str]], Awaitable[Event]]


async def _job(
    command: Message, ctx: WorkContext, deps: Dependencies, procedure: Procedure
) -> None:
    """Run one command to its outcome (or an operator task) and record it."""
    async with ctx.uow() as uow:
        done_by_person = await job_table.TASKS.confirmed(uow.session, ctx.work.key)
    try:
        published = await _as_published(command, deps)
    except site_directory.UnknownSiteTargetError as exc:
        # Nothing was touched: a server change failed before its backup.
        if isinstance(command, ServerChange):
            failure = _cannot_reach_host(command, str(exc), False)
        elif isinstance(command, Verification):
            failure = verification_failed(command, str(exc), False)
        else:
            raise
        await _conclude(ctx, deps, failure)
        return
    try:
        result: Event | OperatorTask = await procedure(published, ctx, deps, done_by_person)
    except ManualTaskPending as pending:
        result = pending.task
    await _conclude(ctx, deps, result)


async def _verification(
    command: Verification, ctx: WorkContext, deps: Dependencies, _tasks: list[str]
) -> Event:
    try:
        sepm = await deps.connect_sepm(command.site)
    except SepmError as exc:
        return verification_failed(command, str(exc), exc.retryable)
    try:
        return await perform_verification(
            command, saga_id=ctx.work.envelope.saga_id, sepm=sepm, store=_store(ctx, deps)
        )
    finally:
        await sepm.close()


async def _server_certificate(
    command: ServerChange, ctx: WorkContext, deps: Dependencies, done_by_person: list[str]
) -> Event:
    job: job_table.Job = ctx.work.details
    try:
        hostops = await deps.host_operations(command.site, done_by_person)
    except HostOperationError as exc:
        return _cannot_reach_host(command, str(exc), exc.retryable)
    try:
        version = sepm_version_reader(deps.connect_sepm, command.site)
        if isinstance(command, UpdateServerCertificate):
            return await update_server_certificate(
                command,
                saga_id=job.saga_id,
                hostops=hostops,
                store=_store(ctx, deps),
                verifier=_verifier(deps),
                sepm_version=version,
            )
        return await rollback_server_certificate(
            command, hostops=hostops, verifier=_verifier(deps), sepm_version=version
        )
    finally:
        await hostops.close()


async def _as_published(command: Message, deps: Dependencies) -> Message:
    """The command with its site and server as the orchestrator published them: the SEPM
    account, the keystore and the TLS probes go there, not where the message says."""
    site = getattr(command, "site", None)
    if site is None:
        return command
    published = await deps.published_site(site)
    update: dict[str, object] = {"site": published}
    server = getattr(command, "server", None)
    if server is not None:
        try:
            update["server"] = published.server(server.name)
        except KeyError:
            raise site_directory.UnknownSiteTargetError(
                f"server {server.name!r} is not registered for site {published.site!r}"
            ) from None
    return command.model_copy(update=update)


def give_up(deps: Dependencies) -> GiveUp:
    """Out of attempts at an unexpected error: the command's typed failure answers it."""

    async def answer(ctx: WorkContext, exc: Exception) -> None:
        failure = typed_failure(ctx.work.command(), describe(exc))
        if failure is None:
            raise exc
        await _conclude(ctx, deps, failure)

    return answer


async def _conclude(ctx: WorkContext, deps: Dependencies, result: Event | OperatorTask) -> None:
    job: job_table.Job = ctx.work.details
    tasks = job_table.TASKS
    now = deps.clock.now()
    async with ctx.uow() as uow:

        def emit(message: Message) -> None:
            ctx.emit(uow, message)

        to_check = await tasks.unverified(uow.session, job.job_id)
        if isinstance(result, OperatorTask):
            # The job got past the tasks it was resumed with: what it observed bore them out.
            await tasks.verified(uow.session, [t for t in to_check if t != result.task_id])
            site = getattr(job.envelope.message(), "site", None)
            await tasks.request(
                uow.session,
                emit,
                result,
                work_key=job.job_id,
                # DeleteServerBackup names its site by name; the others carry a SiteTarget.
                site=site if isinstance(site, str) else site.site if site is not None else "",
                now=now,
            )
            await job_table.await_operator(uow.session, job.job_id, now=now)
        elif to_check and isinstance(result, FAILURES):
            # What we observe contradicts the confirmation: the task is open again.
            for task_id in to_check:
                await tasks.reopen(uow.session, emit, task_id, result.reason)
            await job_table.await_operator(uow.session, job.job_id, now=now)
        else:
            await tasks.verified(uow.session, to_check)
            emit(result)
            await uow.record_outcome(job.idempotency_key, job.command_type, result)
            await job_table.finish_job(uow.session, job.job_id, now)
        await uow.commit()
    log.info("%s for saga %s: %s", job.command_type, job.saga_id, _summary(result))


def _summary(result: Event | OperatorTask) -> str:
    if isinstance(result, OperatorTask):
        return f"waiting for operator task {result.task_id}"
    return result.type_name()


def _cannot_reach_host(
    command: UpdateServerCertificate | RollbackServerCertificate, reason: str, retryable: bool
) -> Event:
    if isinstance(command, UpdateServerCertificate):
        return ServerCertificateUpdateFailed(
            site=command.site.site,
            server=command.server.name,
            stage="backup",
            reason=reason,
            retryable=retryable,
        )
    return ServerCertificateRollbackFailed(
        site=command.site.site, server=command.server.name, reason=reason, retryable=retryable
    )
