"""Wiring: real adapters by default, anything injectable for tests and the embedded runner."""

from __future__ import annotations

from certrotate_shared.clock import Clock
from certrotate_shared.hostops.base import HostOperations
from certrotate_shared.leases import Lease, replica_name
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.record_retention import run_purges
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.sepm.connector import SepmConnector, sepm_connector
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.vault import Vault
from certrotate_shared.wiring import inject_all
from certrotate_shared.work_runner import LeasedWork, WorkRetryPolicy
from replication.adapters.orm import retention_requests
from replication.adapters.repository import OPERATIONS, OperationTable
from replication.entrypoints.api import create_api
from replication.migrations import SCRIPT_LOCATION, VERSION_TABLE
from replication.service_layer.connections import Connections, HostOpsFactory
from replication.service_layer.handlers import HANDLERS, WORK
from replication.service_layer.partnership_pass import Partnerships, give_up
from replication.service_layer.retention import purge_rotation
from replication.settings import Settings

SERVICE = "replication"


def host_operations(settings: Settings, vault: Vault) -> HostOpsFactory:
    """The driver the site's published inventory entry names (twin, WinRM or manual)."""

    async def open_driver(site: SiteTarget) -> HostOperations:
        from certrotate_shared.hostops import open_host_operations

        return await open_host_operations(site, vault, http_timeout=settings.hostops_timeout_s)

    return open_driver


def build_runtime(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    vault: Vault | None = None,
    sepm: SepmConnector | None = None,
    hostops: HostOpsFactory | None = None,
) -> ServiceRuntime:
    """The replication service, its handlers and performers given their dependencies by name."""
    clock = clock or settings.clock()
    vault = vault or Vault.from_settings(settings)
    connections = Connections(
        sepm or sepm_connector(settings, vault), hostops or host_operations(settings, vault)
    )
    partnerships = Partnerships(settings, connections, clock)
    work = LeasedWork(
        service=SERVICE,
        table=OperationTable(),
        lease=Lease(
            OPERATIONS, owner=replica_name(settings.instance_id), seconds=settings.work_lease_s
        ),
        perform=inject_all(WORK, {"partnerships": partnerships}),
        give_up=give_up(partnerships),
        clock=clock,
        poll_s=settings.work_poll_s,
        retries=WorkRetryPolicy.of(settings),
        concurrency=settings.work_concurrency,
    )

    async def operations(runtime: ServiceRuntime) -> None:
        try:
            await work.run(runtime)
        finally:
            await connections.close()

    async def record_retention(runtime: ServiceRuntime) -> None:
        await run_purges(
            runtime,
            retention_requests,
            service="replication",
            retention_days=settings.retention_days,
            interval_s=settings.retention_interval_s,
            purge=purge_rotation,
        )

    spec = ServiceSpec(
        name=SERVICE,
        handlers=inject_all(HANDLERS, {"clock": clock, "work": work, "connections": connections}),
        topics=lambda prefix: [commands_topic(SERVICE, prefix)],
        migrations=SCRIPT_LOCATION,
        version_table=VERSION_TABLE,
        background=[operations, record_retention],
        api=create_api,
    )
    return ServiceRuntime(settings, spec, transport=transport, clock=clock)
