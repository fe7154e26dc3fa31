"""UpdateServerCertificate and RollbackServerCertificate for one management server.

Both look at the world first (what every TLS port serves) and do nothing when the wanted
certificate is already served. Host operations carry idempotency keys derived from the
command's, so a job resumed after a crash repeats none of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from certificates.service_layer.store import BundleUnavailableError, CertificateStore
from certrotate_shared.envelope import Event
from certrotate_shared.hostops import HostOperationError, HostOperations, services_to_restart
from certrotate_shared.messages.certificates import (
    RollbackServerCertificate,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
    UpdateServerCertificate,
)
from certrotate_shared.messages.common import ServerTarget, SiteTarget
from certrotate_shared.sepm import SepmApi, SepmError
from certrotate_shared.sepm.version import parse_version, reported_version

log = logging.getLogger(__name__)

Probe = Callable[[ServerTarget], Awaitable[dict[str, str]]]
Stage = Literal["backup", "install", "restart", "verify"]
# GET /version of the site's SEPM (no login needed); raises SepmError.
VersionReader = Callable[[], Awaitable[dict[str, Any]]]


def sepm_version_reader(
    connect: Callable[[SiteTarget], Awaitable[SepmApi]], site: SiteTarget
) -> VersionReader:
    """Asks the site's SEPM which version it runs, on a connection of its own."""

    async def read() -> dict[str, Any]:
        sepm = await connect(site)
        try:
            return await sepm.version()
        finally:
            await sepm.close()

    return read


class RestartPlanError(Exception):
    """Which services to restart cannot be told: SEPM unreachable or versions unreadable."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


async def services_for(
    server: ServerTarget, read_version: VersionReader, *, rollback: bool = False
) -> list[str]:
    """The services to restart, by the version SEPM reports (semapisrv from 14.0 on).

    The registered version is a person's note and may be stale ("v14.3" once skipped
    semapisrv); it is used only when SEPM's answer is unreadable, or on a rollback, which must
    not wait for a SEPM that the failed update may have taken down.
    """
    registered = parse_version(server.version)
    try:
        reported, text = reported_version(await read_version())
        trouble, retryable = f"SEPM reports no readable version ({text or 'none'})", False
    except SepmError as exc:
        reported, text = None, ""
        trouble, retryable = f"cannot read SEPM's version: {exc}", exc.retryable
    if reported is not None:
        if registered is None or (registered.major, registered.minor) != (
            reported.major,
            reported.minor,
        ):
            log.warning(
                "server %s is registered as version %r but SEPM reports %s: restarting the "
                "services of %s; update the inventory",
                server.name,
                server.version,
                text,
                reported,
            )
        return services_to_restart(str(reported))
    if registered is not None and (rollback or not retryable):
        log.warning(
            "server %s: %s; restarting the services of the registered version %r",
            server.name,
            trouble,
            server.version,
        )
        return services_to_restart(str(registered))
    if registered is None:
        trouble += f", and the registered version {server.version!r} is not one either"
    raise RestartPlanError(f"{server.name}: {trouble}", retryable=retryable)


def _no_tls_ports(server: ServerTarget) -> str | None:
    if server.tls_ports():
        return None
    # Nothing to probe would read as "every port serves it": never report that as done.
    return (
        f"server {server.name} is registered without TLS ports, so certrotate cannot prove "
        "which certificate it serves; register its ports (at least 8443, 443 and 8446, and "
        "8445 where the reporting site is used)"
    )


@dataclass
class Verifier:
    """Observes what a server's TLS ports present, retrying while its services come up."""

    probe: Probe
    timeout_s: float = 60.0
    interval_s: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = field(default=time.monotonic)

    async def observe(self, server: ServerTarget) -> tuple[dict[str, str], str]:
        """(port → fingerprint, "") or ({}, why not) in one try."""
        try:
            return await self.probe(server), ""
        except Exception as exc:  # a closed port while a service restarts is expected
            return {}, str(exc) or type(exc).__name__

    async def serves(self, server: ServerTarget, fingerprint: str) -> bool:
        """Does every TLS port serve this fingerprint right now?"""
        served, _ = await self.observe(server)
        return _mismatches(server, served, fingerprint) == []

    async def await_served(
        self, server: ServerTarget, fingerprint: str
    ) -> tuple[dict[str, str] | None, str]:
        """Probe until every TLS port serves `fingerprint`: (ports verified, "") or (None, why)."""
        deadline = self.monotonic() + self.timeout_s
        while True:
            served, error = await self.observe(server)
            if not error:
                wrong = _mismatches(server, served, fingerprint)
                if not wrong:
                    return served, ""
                error = "; ".join(wrong)
            if self.monotonic() >= deadline:
                return None, (
                    f"after {self.timeout_s:g} s {server.name} does not serve certificate "
                    f"{fingerprint[:16]}… on every TLS port: {error}"
                )
            await self.sleep(self.interval_s)


def _mismatches(server: ServerTarget, served: dict[str, str], fingerprint: str) -> list[str]:
    wanted = server.tls_ports() or served
    problems = []
    for port in wanted:
        seen = served.get(port)
        if seen is None:
            problems.append(f"port {port} not observed")
        elif seen != fingerprint:
            problems.append(f"port {port} serves {seen[:16]}…")
    return problems


async def _restart_all(
    hostops: HostOperations, server: ServerTarget, key: str, services: list[str]
) -> tuple[str, HostOperationError] | None:
    for service in services:
        try:
            await hostops.restart_service(server, service, key=f"{key}:restart:{service}")
        except HostOperationError as exc:
            return service, exc
    return None


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
    refusal = _no_tls_ports(server)
    if refusal:
        return failed("install", refusal, False, None)
    served, _ = await verifier.observe(server)
    if not _mismatches(server, served, expected):
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
    broken = await _restart_all(hostops, server, key, services)
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

    refusal = _no_tls_ports(server)
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
    broken = await _restart_all(hostops, server, key, services)
    if broken is not None:
        service, error = broken
        return failed(f"restarting {service} on {server.name} failed: {error}", error.retryable)
    verified, why = await verifier.await_served(server, expected)
    if verified is None:
        return failed(why, True)
    return ServerCertificateRolledBack(site=site, server=server.name, fingerprint=expected)
