"""The job runner: performs long-running commands outside the consumer's transaction, then
emits their outcome and records it under the command's idempotency key in one transaction.

A job that needs a person (manual host operations) emits OperatorTaskRequested and waits;
the operator's confirmation queues it again with that task counted as done, and whatever the
job then observes decides between the original outcome and OperatorTaskVerificationFailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from certificates.adapters import jobs as job_table
from certificates.adapters.store import SqlCertificateStore
from certificates.service_layer.backup_retention import delete_server_backup
from certificates.service_layer.dependencies import Dependencies
from certificates.service_layer.server_certificate import (
    Verifier,
    rollback_server_certificate,
    sepm_version_reader,
    update_server_certificate,
)
from certificates.service_layer.verification import perform_verification, verification_failed
from certrotate_shared import site_directory
from certrotate_shared.consumer import handling
from certrotate_shared.envelope import Event, Message
from certrotate_shared.failures import backoff_delay, describe, is_transient, typed_failure
from certrotate_shared.hostops import HostOperationError, ManualTaskPending, OperatorTask
from certrotate_shared.leases import Lease, replica_name
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
from certrotate_shared.messages.operator_tasks import (
    OperatorTaskRequested,
    OperatorTaskVerificationFailed,
)
from certrotate_shared.sepm import SepmError

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

FAILURES = (
    CertificateVerificationFailed,
    ServerCertificateUpdateFailed,
    ServerCertificateRollbackFailed,
)


class JobRunner:
    def __init__(self, runtime: ServiceRuntime, deps: Dependencies) -> None:
        self.runtime = runtime
        self.deps = deps
        self.store = SqlCertificateStore(runtime.sessions, deps.box, deps.clock)
        self._running: dict[str, asyncio.Task[None]] = {}
        self.lease = Lease(
            job_table.JOBS,
            owner=replica_name(deps.settings.instance_id),
            seconds=deps.settings.job_lease_s,
        )

    def verifier(self) -> Verifier:
        settings = self.deps.settings
        return Verifier(
            probe=self.deps.probe,
            timeout_s=settings.verify_timeout_s,
            interval_s=settings.verify_interval_s,
        )

    async def run(self) -> None:
        settings = self.deps.settings
        renew_every = settings.job_lease_s / 3
        last_renewal = asyncio.get_running_loop().time()
        try:
            while True:
                free = settings.max_concurrent_jobs - len(self._running)
                if free > 0:
                    for job in await job_table.claim_jobs(
                        self.runtime.sessions, self.lease, now=self.deps.clock.now(), limit=free
                    ):
                        task = asyncio.create_task(self._execute(job), name=f"job:{job.job_id}")
                        self._running[job.job_id] = task
                        task.add_done_callback(self._forget)
                now = asyncio.get_running_loop().time()
                if now - last_renewal >= renew_every:
                    last_renewal = now
                    await self._renew()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.deps.jobs_waiting.wait(), settings.job_poll_interval_s
                    )
                if self.deps.jobs_waiting.is_set():
                    self.deps.jobs_waiting.clear()
                    # The handler that woke us commits right after returning.
                    await asyncio.sleep(0.02)
        finally:
            for task in list(self._running.values()):
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _renew(self) -> None:
        """Keep holding the running jobs; stop working on any another replica took over
        (this one stalled past its lease) so the two never act on one job at once."""
        running = list(self._running)
        held = await job_table.renew_leases(self.runtime.sessions, self.lease, running)
        for job_id in running:
            task = self._running.get(job_id)
            if job_id not in held and task is not None:
                log.warning("job %s is no longer ours (lease lost); stopping it", job_id)
                task.cancel()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running = {k: t for k, t in self._running.items() if t is not task}

    async def _execute(self, job: job_table.Job) -> None:
        with handling("certificates", job.envelope, verb="work"):
            await self._execute_logged(job)

    async def _execute_logged(self, job: job_table.Job) -> None:
        try:
            command = job.envelope.message()
            try:
                result: Event | OperatorTask = await self.perform(job, command)
            except ManualTaskPending as pending:
                result = pending.task
            except Exception as exc:
                failure = await self._after_error(job, command, exc)
                if failure is None:
                    return
                result = failure
            await self._conclude(job, result)
        except Exception as exc:
            # The database went away while we recorded the outcome or the retry: the job's
            # lease runs out and it is run again (its host operations are idempotent).
            log.warning(
                "%s %s: %s; it will be retried", job.command_type, job.job_id, describe(exc)
            )

    async def _after_error(
        self, job: job_table.Job, command: Message, exc: Exception
    ) -> Event | None:
        """Schedule another attempt, or (out of attempts at a non-transient error) the typed
        failure that answers the command: never silent retries for ever."""
        settings = self.deps.settings
        transient = is_transient(exc)
        reason = describe(exc)
        failure = typed_failure(command, reason)
        if not transient and failure is not None and job.attempts >= settings.max_delivery_attempts:
            log.error(
                "%s %s failed for good after %d attempt(s): %s",
                job.command_type,
                job.job_id,
                job.attempts,
                reason,
                exc_info=exc,
            )
            return failure
        delay = backoff_delay(
            job.attempts,
            base_s=settings.retry_base_delay_s,
            cap_s=settings.transient_retry_max_delay_s,
        )
        log.warning(
            "%s %s failed (%s, attempt %d); retrying in %.1f s: %s",
            job.command_type,
            job.job_id,
            "transient" if transient else "unexpected",
            job.attempts,
            delay,
            reason,
            exc_info=None if transient else exc,
        )
        now = self.deps.clock.now()
        await job_table.retry_later(
            self.runtime.sessions,
            self.lease,
            job.job_id,
            at=now + timedelta(seconds=delay),
            count_attempt=not transient,
            now=now,
        )
        return None

    async def perform(self, job: job_table.Job, command: Message) -> Event:
        """Run one command to its outcome event (raises ManualTaskPending)."""
        if isinstance(command, DeleteServerBackup):
            return await delete_server_backup(
                command,
                saga_id=job.saga_id,
                store=self.store,
                resolve_site=self.deps.published_site_named,
                host_operations=self.deps.host_operations,
                confirmed_tasks=job.confirmed_tasks,
            )
        try:
            command = await self._as_published(command)
        except site_directory.UnknownSiteTargetError as exc:
            if isinstance(command, UpdateServerCertificate | RollbackServerCertificate):
                return _cannot_reach_host(command, str(exc), False)
            if isinstance(command, SetCertificateVerification | CheckCertificateVerification):
                return verification_failed(command, str(exc), False)
            raise
        if isinstance(command, SetCertificateVerification | CheckCertificateVerification):
            try:
                sepm = await self.deps.connect_sepm(command.site)
            except SepmError as exc:
                return verification_failed(command, str(exc), exc.retryable)
            try:
                return await perform_verification(
                    command, saga_id=job.saga_id, sepm=sepm, store=self.store
                )
            finally:
                await sepm.close()
        if isinstance(command, UpdateServerCertificate | RollbackServerCertificate):
            try:
                hostops = await self.deps.host_operations(command.site, job.confirmed_tasks)
            except HostOperationError as exc:
                return _cannot_reach_host(command, str(exc), exc.retryable)
            try:
                version = sepm_version_reader(self.deps.connect_sepm, command.site)
                if isinstance(command, UpdateServerCertificate):
                    return await update_server_certificate(
                        command,
                        saga_id=job.saga_id,
                        hostops=hostops,
                        store=self.store,
                        verifier=self.verifier(),
                        sepm_version=version,
                    )
                return await rollback_server_certificate(
                    command, hostops=hostops, verifier=self.verifier(), sepm_version=version
                )
            finally:
                await hostops.close()
        raise TypeError(f"no job procedure for {type(command).__name__}")

    async def _as_published(self, command: Message) -> Message:
        """The command with its site and server as the orchestrator published them: the SEPM
        account, the keystore and the TLS probes go there, not where the message says."""
        site = getattr(command, "site", None)
        if site is None:
            return command
        published = await self.deps.published_site(site)
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

    async def _conclude(self, job: job_table.Job, result: Event | OperatorTask) -> None:
        now = self.deps.clock.now()
        async with self.runtime.uow() as uow:

            def emit(message: Message) -> None:
                uow.emit(message, saga_id=job.saga_id, causation=job.envelope)

            if isinstance(result, OperatorTask):
                if result.task_id != job.task_id:
                    emit(_task_requested(job, result))
                await job_table.await_operator(
                    uow.session,
                    job.job_id,
                    task_id=result.task_id,
                    confirmed_tasks=job.confirmed_tasks,
                    now=now,
                )
            elif job.resumed_by_task and isinstance(result, FAILURES):
                # What we observe contradicts the confirmation: the task stays open.
                task_id = job.resumed_by_task
                emit(OperatorTaskVerificationFailed(task_id=task_id, reason=result.reason))
                await job_table.await_operator(
                    uow.session,
                    job.job_id,
                    task_id=task_id,
                    confirmed_tasks=[t for t in job.confirmed_tasks if t != task_id],
                    now=now,
                )
            else:
                emit(result)
                await uow.record_outcome(job.idempotency_key, job.command_type, result)
                await job_table.finish_job(uow.session, job.job_id, now)
            await uow.commit()
        log.info("%s for saga %s: %s", job.command_type, job.saga_id, _summary(result))


def _summary(result: Event | OperatorTask) -> str:
    if isinstance(result, OperatorTask):
        return f"waiting for operator task {result.task_id}"
    return result.type_name()


def _task_requested(job: job_table.Job, task: OperatorTask) -> OperatorTaskRequested:
    command = job.envelope.message()
    site = getattr(command, "site", None)
    return OperatorTaskRequested(
        task_id=task.task_id,
        service="certificates",
        site=site if isinstance(site, str) else site.site if site is not None else "",
        server=task.server,
        title=task.title,
        instructions=task.instructions,
        verification=task.verification,
    )


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


async def run_jobs(runtime: ServiceRuntime, deps: Dependencies) -> None:
    """Background loop: run jobs until cancelled."""
    try:
        await JobRunner(runtime, deps).run()
    finally:
        await deps.close()
