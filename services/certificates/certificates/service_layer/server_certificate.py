"""UpdateServerCertificate and RollbackServerCertificate for one management server.

Both look at the world first (what every TLS port serves) and do nothing when the wanted
certificate is already served. Host operations carry idempotency keys derived from the
command's, so a job resumed after a crash repeats none of them.
"""

from __future__ import annotations

from typing import Literal

from certificates.service_layer.restart_plan import (
    RestartPlanError,
    VersionReader,
    restart_all,
    services_for,
)
from certificates.service_layer.served_certificate import Verifier, mismatches, no_tls_ports
from certificates.service_layer.store import BundleUnavailableError, CertificateStore
from certrotate_shared.envelope import Event
from certrotate_shared.hostops import HostOperationError, HostOperations
from certrotate_shared.messages.certificates import (
    RollbackServerCertificate,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
    UpdateServerCertificate,
)

Stage = Literal["backup", "install", "restart", "verify"]


async def update_server_certificate(
    command: UpdateServerCertificate,
    *,
    saga_id: str,
    hostops: HostOperations,
    store: CertificateStore,
    verifier: Verifier,
    sepm_version: VersionReader,
) -> Event:
    """Back up, install, restart in order, verify every TLS port. Raises ManualTaskPending."""
    site, server, key = command.site.site, command.server, command.idempotency_key
    expected = command.expected_fingerprint

    def failed(stage: Stage, reason: str, retryable: bool, backup_ref: str | None) -> Event:
        return ServerCertificateUpdateFailed(
            site=site,
            server=server.name,
            stage=stage,
            reason=reason,
            retryable=retryable,
            backup_ref=backup_ref,
            previous_fingerprint=backup.fingerprint if backup and backup_ref else None,
        )

    backup = await store.backup_for(saga_id, site, server.name)
    refusal = no_tls_ports(server)
    if refusal:
        return failed("install", refusal, False, None)
    served, _ = await verifier.observe(server)
    if not mismatches(server, served, expected):
        # Already in place (an earlier attempt, or a person did it): report, change nothing.
        return ServerCertificateUpdated(
            site=site,
            server=server.name,
            fingerprint=expected,
            backup_ref=backup.backup_ref if backup else "",
            ports_verified=served,
            previous_fingerprint=backup.fingerprint if backup else None,
        )
    try:
        stored = await store.load_bundle(command.bundle_ref)
    except BundleUnavailableError as exc:
        return failed("install", str(exc), False, None)
    if stored.fingerprint_sha256 != expected:
        return failed(
            "install",
            f"bundle {command.bundle_ref} holds certificate {stored.fingerprint_sha256[:16]}…, "
            f"not the expected {expected[:16]}…",
            False,
            None,
        )
    try:
        services = await services_for(server, sepm_version)
    except RestartPlanError as exc:
        return failed("restart", str(exc), exc.retryable, backup.backup_ref if backup else None)
    if backup is None:
        try:
            made = await hostops.backup_certificate(server, key=f"{key}:backup")
        except HostOperationError as exc:
            return failed("backup", f"backup of {server.name} failed: {exc}", exc.retryable, None)
        backup = await store.record_backup(saga_id, site, server.name, made)
    try:
        await hostops.install_certificate(server, stored.bundle, key=f"{key}:install")
    except HostOperationError as exc:
        return failed(
            "install", f"install on {server.name} failed: {exc}", exc.retryable, backup.backup_ref
        )
    broken = await restart_all(hostops, server, key, services)
    if broken is not None:
        service, error = broken
        return failed(
            "restart",
            f"restarting {service} on {server.name} failed: {error}",
            error.retryable,
            backup.backup_ref,
        )
    verified, why = await verifier.await_served(server, expected)
    if verified is None:
        return failed("verify", why, True, backup.backup_ref)
    return ServerCertificateUpdated(
        site=site,
        server=server.name,
        fingerprint=expected,
        backup_ref=backup.backup_ref,
        ports_verified=verified,
        previous_fingerprint=backup.fingerprint,
    )


async def rollback_server_certificate(
    command: RollbackServerCertificate,
    *,
    hostops: HostOperations,
    verifier: Verifier,
    sepm_version: VersionReader,
) -> Event:
    """Restore the backup, restart in order, verify the old fingerprint. Raises ManualTaskPending."""
    site, server, key = command.site.site, command.server, command.idempotency_key
    expected = command.expected_fingerprint

    def failed(reason: str, retryable: bool) -> Event:
        return ServerCertificateRollbackFailed(
            site=site, server=server.name, reason=reason, retryable=retryable
        )

    refusal = no_tls_ports(server)
    if refusal:
        return failed(refusal, False)
    if await verifier.serves(server, expected):
        return ServerCertificateRolledBack(site=site, server=server.name, fingerprint=expected)
    try:
        services = await services_for(server, sepm_version, rollback=True)
    except RestartPlanError as exc:
        return failed(str(exc), exc.retryable)
    try:
        await hostops.restore_certificate(server, command.backup_ref, key=f"{key}:restore")
    except HostOperationError as exc:
        return failed(
            f"restoring backup {command.backup_ref} on {server.name} failed: {exc}",
            exc.retryable,
        )
    broken = await restart_all(hostops, server, key, services)
    if broken is not None:
        service, error = broken
        return failed(f"restarting {service} on {server.name} failed: {error}", error.retryable)
    verified, why = await verifier.await_served(server, expected)
    if verified is None:
        return failed(why, True)
    return ServerCertificateRolledBack(site=site, server=server.name, fingerprint=expected)
