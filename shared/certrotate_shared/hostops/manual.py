"""The manual driver: a person does the host operation; certrotate asks, waits, then observes.

The flow, for a worker (certificates or replication service):
1. The worker calls an operation with its idempotency key. The driver raises
   ManualTaskPending(task) with `task.task_id = task_id_for(key)`; the same key always gives
   the same task id, so a redelivered command re-raises the same task, not a second one. The
   worker emits OperatorTaskRequested(task_id, title, instructions, verification, ...) and
   keeps the command open; the orchestrator shows the task in its API and the CLI.
2. The operator does the work and confirms: ConfirmOperatorTask(task_id) reaches the worker,
   which records the id as confirmed.
3. The worker re-runs the same operation with the same key through a driver made with
   `host_operations_for(site, vault, confirmed_tasks={...})`. For a confirmed task the driver
   returns instead of raising, after checking what it can observe itself:
   - backup: the fingerprint served on every TLS port now (they must agree) becomes the
     backup's fingerprint; `backup_ref` is "manual:<task id>:<fingerprint>", so a rollback
     knows what it must serve again. Keep the first CertificateBackup: a later re-run would
     observe whatever is served then.
   - install / restore: the task includes restarting the services, so the driver checks that
     every TLS port serves the expected certificate (the bundle's, or the backup's) and raises
     ManualTaskNotVerified (the task stays open: emit OperatorTaskVerificationFailed) if not.
     The following restart_service calls for that server, on the same driver instance, then
     return at once: the operator already restarted them.
   - delete a backup (after its rotation's retention): returns; the files are on the server
     or on a share certrotate cannot see, so the confirmation is the record.
   - restart (on its own), replication partner delete/add: returns; the replication service
     verifies the partner list and replication status over the REST API, which this driver
     does not hold.
Instructions never contain a password, a private key or a keystore: they name the bundle
held by certrotate (CertificateBundle.ref), and the operator gets its password from its owner.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection

from certrotate_shared.hostops.arguments import checked_partner
from certrotate_shared.hostops.backup_refs import read_backup_ref
from certrotate_shared.hostops.base import (
    CertificateBackup,
    CertificateBundle,
    ManualTaskNotVerified,
    ManualTaskPending,
    OperatorTask,
)
from certrotate_shared.hostops.manual_partner_tasks import add_partner_task, delete_partner_task
from certrotate_shared.hostops.manual_tasks import (
    backup_task,
    delete_backup_task,
    install_task,
    restart_task,
    restore_task,
    task_id_for,
)
from certrotate_shared.messages.common import ServerTarget, SiteTarget
from certrotate_shared.tlsprobe import TlsProbeError, served_fingerprints

log = logging.getLogger(__name__)

Probe = Callable[[ServerTarget], Awaitable[dict[str, str]]]
MANUAL_BACKUP_PREFIX = "manual:"


class ManualHostOperations:
    """HostOperations done by a person; see the module docstring for the confirmation flow."""

    def __init__(
        self, site: SiteTarget, *, confirmed_tasks: Collection[str] = (), probe: Probe | None = None
    ) -> None:
        self._site = site
        self._confirmed = frozenset(confirmed_tasks)
        self._probe: Probe = probe or served_fingerprints
        self._restarted_by_operator: set[str] = set()

    async def backup_certificate(self, server: ServerTarget, *, key: str) -> CertificateBackup:
        if task_id_for(key) not in self._confirmed:
            raise ManualTaskPending(backup_task(server, key, await self._current(server)))
        task = backup_task(server, key, None)
        served = await self._observe(server, task)
        fingerprints = set(served.values())
        if len(fingerprints) != 1:
            raise ManualTaskNotVerified(
                task, f"the TLS ports of {server.name} serve different certificates: {served}"
            )
        fingerprint = fingerprints.pop()
        return CertificateBackup(
            backup_ref=f"{MANUAL_BACKUP_PREFIX}{task.task_id}:{fingerprint}",
            fingerprint=fingerprint,
        )

    async def install_certificate(
        self, server: ServerTarget, bundle: CertificateBundle, *, key: str
    ) -> None:
        fingerprint = bundle.fingerprint or bundle_fingerprint(bundle)
        task = install_task(
            server, key, bundle_ref=bundle.ref, fmt=bundle.format, fingerprint=fingerprint
        )
        if task.task_id not in self._confirmed:
            raise ManualTaskPending(task)
        if fingerprint is not None:
            await self._expect(server, task, fingerprint)
        self._restarted_by_operator.add(server.name)

    async def restore_certificate(self, server: ServerTarget, backup_ref: str, *, key: str) -> None:
        source, backup_id, fingerprint = parse_backup_ref(backup_ref)
        task = restore_task(
            server, key, source=source, backup_id=backup_id, fingerprint=fingerprint
        )
        if task.task_id not in self._confirmed:
            raise ManualTaskPending(task)
        if fingerprint is not None:
            await self._expect(server, task, fingerprint)
        self._restarted_by_operator.add(server.name)

    async def delete_certificate_backup(
        self, server: ServerTarget, backup_ref: str, *, key: str
    ) -> bool:
        # Printed in a person's instructions as a path: only the exact shapes certrotate makes.
        task = delete_backup_task(server, key, read_backup_ref(backup_ref))
        if task.task_id not in self._confirmed:
            raise ManualTaskPending(task)
        return True

    async def restart_service(self, server: ServerTarget, service: str, *, key: str) -> None:
        if server.name in self._restarted_by_operator:
            log.info("manual: %s on %s was restarted by the operator's task", service, server.name)
            return
        task = restart_task(server, service, key)
        if task.task_id not in self._confirmed:
            raise ManualTaskPending(task)

    async def delete_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        # It is printed in a person's instructions: no line breaks or look-alikes in there.
        task = delete_partner_task(
            site, checked_partner(partner), key, on_partner_side=on_partner_side
        )
        if task.task_id not in self._confirmed:
            raise ManualTaskPending(task)

    async def add_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        task = add_partner_task(
            site, checked_partner(partner), key, on_partner_side=on_partner_side
        )
        if task.task_id not in self._confirmed:
            raise ManualTaskPending(task)

    def restarted_by_operator(self, server: ServerTarget) -> bool:
        """Whether a confirmed install or rollback task on this driver restarted the services."""
        return server.name in self._restarted_by_operator

    async def close(self) -> None:
        self._restarted_by_operator.clear()

    async def _current(self, server: ServerTarget) -> str | None:
        """What the client-facing port serves now, for the task's text; None if unobservable."""
        try:
            served = await self._probe(server)
        except TlsProbeError:
            return None
        return served.get("443") or next(iter(served.values()), None)

    async def _observe(self, server: ServerTarget, task: OperatorTask) -> dict[str, str]:
        try:
            return await self._probe(server)
        except TlsProbeError as exc:
            raise ManualTaskNotVerified(task, str(exc)) from exc

    async def _expect(self, server: ServerTarget, task: OperatorTask, fingerprint: str) -> None:
        served = await self._observe(server, task)
        wrong = {port: fp for port, fp in served.items() if fp != fingerprint.lower()}
        if wrong:
            detail = ", ".join(f"port {port} serves {fp}" for port, fp in sorted(wrong.items()))
            raise ManualTaskNotVerified(task, f"{server.name} should serve {fingerprint}: {detail}")


def bundle_fingerprint(bundle: CertificateBundle) -> str | None:
    """sha256 of the bundle's certificate for PKCS#12 and PEM; None when it cannot be read."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        if bundle.format == "pkcs12":
            password = bundle.password.encode() if bundle.password else None
            _key, cert, _chain = pkcs12.load_key_and_certificates(bundle.data, password)
        elif bundle.format == "pem":
            cert = x509.load_pem_x509_certificates(bundle.data)[0]
        else:
            return None  # JKS: the certificate store reports it with the bundle
    except (ValueError, IndexError, TypeError):
        return None
    if cert is None:
        return None
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def parse_backup_ref(backup_ref: str) -> tuple[str | None, str | None, str | None]:
    """(source, backup id, fingerprint) from "manual:<task>:<fp>" or "winrm:<backup id>:<fp>"
    (the WinRM driver's backups, rolled back through the console); Nones otherwise."""
    source, _, rest = backup_ref.partition(":")
    if source not in ("manual", "winrm") or not rest:
        return None, None, None
    backup_id, _, fingerprint = rest.rpartition(":")
    valid = len(fingerprint) == 64 and all(c in "0123456789abcdef" for c in fingerprint)
    return source, backup_id or None, fingerprint if valid else None
