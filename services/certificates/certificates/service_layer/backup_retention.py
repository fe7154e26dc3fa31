"""DeleteServerBackup: a rotation's retention is over, its backup leaves the server's host.

The order makes a crash harmless: the files are deleted first, then the record. A crash in
between leaves the record (and the job, whose lease runs out), so the deletion runs again and
finds the files gone, which counts as deleted. The job runs only after every earlier job of
its rotation has finished (one saga's jobs run in arrival order), so a rollback still in
progress, or waiting for a person, keeps its backup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from certificates.service_layer.store import CertificateStore
from certrotate_shared import site_directory
from certrotate_shared.envelope import Event
from certrotate_shared.hostops import HostOperationError, HostOperations
from certrotate_shared.messages.certificates import (
    DeleteServerBackup,
    ServerBackupDeleted,
    ServerBackupDeletionFailed,
)
from certrotate_shared.messages.common import SiteTarget

HostOpsOpener = Callable[[SiteTarget, Collection[str]], Awaitable[HostOperations]]
SiteResolver = Callable[[str], Awaitable[SiteTarget]]


async def delete_server_backup(
    command: DeleteServerBackup,
    *,
    saga_id: str,
    store: CertificateStore,
    resolve_site: SiteResolver,
    host_operations: HostOpsOpener,
    confirmed_tasks: Collection[str],
) -> Event:
    """Delete the recorded backup from its host, then the record. Raises ManualTaskPending,
    and HostOperationError when retrying can help (the job runner retries)."""
    site, server = command.site, command.server
    backup = await store.backup_for(saga_id, site, server)
    if backup is None:
        # An earlier run deleted the files and the record, then stopped before reporting.
        return ServerBackupDeleted(site=site, server=server, backup_ref="", already_gone=True)

    def failed(reason: str) -> Event:
        return ServerBackupDeletionFailed(
            site=site,
            server=server,
            backup_ref=backup.backup_ref,
            reason=f"{reason}; the backup {backup.backup_ref} stays on {server} and in "
            "certrotate's records",
            retryable=False,
        )

    try:
        target = await resolve_site(site)
        server_target = target.server(server)
    except site_directory.UnknownSiteTargetError as exc:
        return failed(str(exc))
    except KeyError:
        return failed(f"server {server!r} is no longer registered for site {site!r}")
    hostops = await host_operations(target, confirmed_tasks)
    try:
        deleted = await hostops.delete_certificate_backup(
            server_target, backup.backup_ref, key=command.idempotency_key
        )
    except HostOperationError as exc:
        if exc.retryable:
            raise
        return failed(f"deleting it failed: {exc}")
    finally:
        await hostops.close()
    await store.forget_backup(saga_id, site, server)
    return ServerBackupDeleted(
        site=site, server=server, backup_ref=backup.backup_ref, already_gone=not deleted
    )
