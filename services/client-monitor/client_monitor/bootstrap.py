"""Wiring: real or fake dependencies in, a runnable client-monitor out."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from certrotate_shared.clock import Clock
from certrotate_shared.leases import Lease, replica_name
from certrotate_shared.record_retention import run_purges
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.sepm.connector import SepmConnector, sepm_connector
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.vault import Vault
from certrotate_shared.wiring import inject_all
from certrotate_shared.work_runner import LeasedWork, WorkRetryPolicy
from client_monitor.adapters.orm import retention_requests
from client_monitor.adapters.repository import WATCHES, WatchTable
from client_monitor.adapters.sepm_streams import asyncio_transport
from client_monitor.entrypoints.api import create_api
from client_monitor.migrations import SCRIPT_LOCATION, VERSION_TABLE
from client_monitor.service_layer.board import WatchBoard
from client_monitor.service_layer.handlers import HANDLERS, WORK
from client_monitor.service_layer.metrics import read_gauges
from client_monitor.service_layer.retention import purge_rotation
from client_monitor.settings import Settings

SERVICE = "client-monitor"
# What every SEPM client of this service is opened with (bench/monitor_scan.py uses it too):
# a watch reads ~650 KB pages by the thousand, cheaper on asyncio's own sockets.
SEPM_CLIENT_OPTIONS: dict[str, Any] = {"transport_factory": asyncio_transport}


def advertised_url(settings: Settings, listening: str | None) -> str | None:
    """Where other replicas reach this one: the setting, else the address it listens on."""
    if settings.advertise_url:
        return settings.advertise_url
    if listening is None:
        return None
    parts = urlsplit(listening)
    if parts.hostname in ("0.0.0.0", "::"):
        return parts._replace(netloc=f"{socket.gethostname()}:{parts.port}").geturl()
    return listening


def build_runtime(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    vault: Vault | None = None,
    sepm: SepmConnector | None = None,
) -> ServiceRuntime:
    """The client-monitor, its handlers and performer given their dependencies by name."""
    clock = clock or settings.clock()
    vault = vault or Vault.from_settings(settings)
    owner = replica_name(settings.instance_id)
    connector = sepm or sepm_connector(settings, vault, **SEPM_CLIENT_OPTIONS)
    board = WatchBoard(settings, connector, owner=owner)
    work = LeasedWork(
        service=SERVICE,
        table=WatchTable(board.address),
        lease=Lease(WATCHES, owner=owner, seconds=settings.work_lease_s),
        perform=inject_all(WORK, {"board": board}),
        give_up=board.give_up,
        clock=clock,
        poll_s=settings.work_poll_s,
        retries=WorkRetryPolicy.of(settings),
    )

    async def watches(runtime: ServiceRuntime) -> None:
        board.locate(lambda: advertised_url(settings, runtime.http_url))
        await work.run(runtime)

    async def record_retention(runtime: ServiceRuntime) -> None:
        await run_purges(
            runtime,
            retention_requests,
            service="client-monitor",
            retention_days=settings.retention_days,
            interval_s=settings.retention_interval_s,
            purge=purge_rotation,
        )

    spec = ServiceSpec(
        name=SERVICE,
        handlers=inject_all(HANDLERS, {"clock": clock, "work": work}),
        topics=lambda prefix: [commands_topic(SERVICE, prefix)],
        migrations=SCRIPT_LOCATION,
        version_table=VERSION_TABLE,
        background=[watches, record_retention],
        api=lambda runtime: create_api(runtime, board),
        gauges=read_gauges,
    )
    return ServiceRuntime(settings, spec, transport=transport, clock=clock)
