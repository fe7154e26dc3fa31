"""Wiring: real or fake dependencies in, a runnable replication service out."""

from __future__ import annotations

import functools
from typing import Any

from certrotate_shared.clock import Clock
from certrotate_shared.hostops.base import HostOperations
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.record_retention import run_purges
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.sepm.connector import SepmConnector, sepm_connector
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.vault import Vault
from replication.adapters.orm import retention_requests
from replication.entrypoints.api import create_api
from replication.migrations import SCRIPT_LOCATION, VERSION_TABLE
from replication.service_layer.connections import Connections, HostOpsFactory
from replication.service_layer.handlers import HANDLERS, Deps
from replication.service_layer.retention import purge_rotation
from replication.service_layer.worker import ReplicationWorker
from replication.settings import Settings

SERVICE = "replication"


def host_operations(settings: Settings, vault: Vault) -> HostOpsFactory:
    """The driver the site's published inventory entry names (twin, WinRM or manual)."""

    async def open_driver(site: SiteTarget) -> HostOperations:
        from certrotate_shared.hostops import open_host_operations

        return await open_host_operations(site, vault, http_timeout=settings.hostops_timeout_s)

    return open_driver


def build_spec(
    settings: Settings,
    *,
    sepm_factory: SepmConnector | None = None,
    hostops_factory: HostOpsFactory | None = None,
    vault: Vault | None = None,
    **_: Any,
) -> ServiceSpec:
    """The replication service: its commands, its tables, its worker and its HTTP API."""
    lazy_vault = vault or Vault.from_settings(settings)
    connections = Connections(
        sepm_factory or sepm_connector(settings, lazy_vault),
        hostops_factory or host_operations(settings, lazy_vault),
    )
    worker = ReplicationWorker(settings, connections)
    deps = Deps(connections=connections, wake_worker=worker.wake)

    async def replication_worker(runtime: ServiceRuntime) -> None:
        await worker.run(runtime)

    async def record_retention(runtime: ServiceRuntime) -> None:
        await run_purges(
            runtime,
            retention_requests,
            service="replication",
            retention_days=settings.retention_days,
            interval_s=settings.retention_interval_s,
            purge=purge_rotation,
        )

    return ServiceSpec(
        name=SERVICE,
        handlers={cls: functools.partial(fn, deps=deps) for cls, fn in HANDLERS.items()},
        topics=lambda prefix: [commands_topic(SERVICE, prefix)],
        migrations=SCRIPT_LOCATION,
        version_table=VERSION_TABLE,
        background=[replication_worker, record_retention],
        api=create_api,
    )


def build_runtime(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    **deps: Any,
) -> ServiceRuntime:
    """A runtime ready to start(); `clock` replaces the settings' clock (tests, the twin)."""
    return ServiceRuntime(settings, build_spec(settings, **deps), transport=transport, clock=clock)
