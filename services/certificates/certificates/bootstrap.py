"""Wiring: real adapters by default, anything injectable for tests and the embedded runner."""

from __future__ import annotations

import functools
from pathlib import Path

from certificates.adapters.jobs import JOBS, JobTable
from certificates.service_layer.dependencies import Dependencies, HostOpsFactory
from certificates.service_layer.handlers import HANDLERS, WORK
from certificates.service_layer.housekeeping import purge_stale_bundles
from certificates.service_layer.jobs import give_up
from certificates.service_layer.served_certificate import Probe
from certificates.settings import Settings
from certrotate_shared.clock import Clock, SystemClock
from certrotate_shared.leases import Lease, replica_name
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.sepm.connector import SepmConnector, sepm_connector
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.vault import Vault
from certrotate_shared.wiring import inject_all
from certrotate_shared.work_runner import LeasedWork, WorkRetryPolicy

SERVICE = "certificates"
MIGRATIONS = str(Path(__file__).parent / "migrations")


def build_runtime(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    vault: Vault | None = None,
    sepm: SepmConnector | None = None,
    hostops: HostOpsFactory | None = None,
    probe: Probe | None = None,
) -> ServiceRuntime:
    """The certificates service, its handlers and performers given their dependencies by name."""
    from certificates.entrypoints.api import create_api

    # Certificate validity and the bundle TTL are real time, even in an accelerated rehearsal.
    clock = clock or SystemClock()
    owns_vault = vault is None
    vault = vault or Vault.from_settings(settings)
    if hostops is None:
        from certrotate_shared.hostops import open_host_operations

        hostops = open_host_operations
    if probe is None:
        from certrotate_shared.tlsprobe import served_fingerprints

        probe = functools.partial(served_fingerprints, timeout=settings.probe_timeout_s)
    deps = Dependencies(
        settings=settings,
        box=SecretBox(settings.master_key_bytes(), settings.previous_master_key_bytes()),
        clock=clock,
        sepm=sepm or sepm_connector(settings, vault),
        hostops_factory=hostops,
        probe=probe,
        vault=vault,
        owns_vault=owns_vault,
    )
    work = LeasedWork(
        service=SERVICE,
        table=JobTable(),
        lease=Lease(JOBS, owner=replica_name(settings.instance_id), seconds=settings.work_lease_s),
        perform=inject_all(WORK, {"deps": deps}),
        give_up=give_up(deps),
        clock=clock,
        poll_s=settings.work_poll_s,
        retries=WorkRetryPolicy.of(settings),
        concurrency=settings.work_concurrency,
    )

    deps.wake_jobs = work.wake

    async def jobs(runtime: ServiceRuntime) -> None:
        try:
            await work.run(runtime)
        finally:
            await deps.close()

    async def bundle_purge(runtime: ServiceRuntime) -> None:
        await purge_stale_bundles(runtime, deps)

    spec = ServiceSpec(
        name=SERVICE,
        handlers=inject_all(HANDLERS, {"clock": clock, "work": work}),
        topics=lambda prefix: [commands_topic(SERVICE, prefix)],
        migrations=MIGRATIONS,
        version_table="alembic_version_certificates",
        background=[jobs, bundle_purge],
        api=functools.partial(create_api, deps=deps),
    )
    return ServiceRuntime(settings, spec, transport=transport, clock=clock)
