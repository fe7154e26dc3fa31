"""Wiring: real or fake dependencies in, a runnable client-monitor out."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from certrotate_shared.clock import Clock
from certrotate_shared.record_retention import run_purges
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.sepm.connector import SepmConnector, sepm_connector
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.vault import Vault
from client_monitor.adapters.orm import retention_requests
from client_monitor.entrypoints.api import create_api
from client_monitor.migrations import SCRIPT_LOCATION, VERSION_TABLE
from client_monitor.service_layer.board import WatchBoard
from client_monitor.service_layer.handlers import HANDLERS
from client_monitor.service_layer.metrics import read_gauges
from client_monitor.service_layer.retention import purge_rotation
from client_monitor.settings import Settings

SERVICE = "client-monitor"


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


def build_spec(
    settings: Settings,
    *,
    sepm_factory: SepmConnector | None = None,
    vault: Vault | None = None,
    **_: Any,
) -> ServiceSpec:
    """The client-monitor: its commands, its tables, the watch board and its HTTP API."""
    board = WatchBoard(
        settings, sepm_factory or sepm_connector(settings, vault or Vault.from_settings(settings))
    )

    async def watch_board(runtime: ServiceRuntime) -> None:
        board.locate(lambda: advertised_url(settings, runtime.http_url))
        await board.run(runtime)

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
        handlers=HANDLERS,
        topics=lambda prefix: [commands_topic(SERVICE, prefix)],
        migrations=SCRIPT_LOCATION,
        version_table=VERSION_TABLE,
        background=[watch_board, record_retention],
        api=lambda runtime: create_api(runtime, board),
        gauges=read_gauges,
    )
    return spec


def build_runtime(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    **deps: Any,
) -> ServiceRuntime:
    """A runtime ready to start(); `clock` replaces the settings' clock (tests, the twin)."""
    return ServiceRuntime(settings, build_spec(settings, **deps), transport=transport, clock=clock)
