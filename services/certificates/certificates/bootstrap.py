"""Wiring: real adapters by default, anything injectable for tests and the embedded runner."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from certificates.service_layer.dependencies import Dependencies, HostOpsFactory
from certificates.service_layer.handlers import HANDLERS
from certificates.service_layer.housekeeping import purge_stale_bundles
from certificates.service_layer.jobs import run_jobs
from certificates.service_layer.server_certificate import Probe
from certificates.settings import Settings
from certrotate_shared.clock import Clock, SystemClock
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.sepm.connector import SepmConnector, sepm_connector
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport

MIGRATIONS = str(Path(__file__).parent / "migrations")


def build_dependencies(
    settings: Settings,
    *,
    sepm_factory: SepmConnector | None = None,
    hostops_factory: HostOpsFactory | None = None,
    probe: Probe | None = None,
    vault: Any = None,
    clock: Clock | None = None,
) -> Dependencies:
    if hostops_factory is None:
        from certrotate_shared.hostops import open_host_operations

        hostops_factory = open_host_operations
    if probe is None:
        from certrotate_shared.tlsprobe import served_fingerprints

        probe = functools.partial(served_fingerprints, timeout=settings.probe_timeout_s)
    owns_vault = vault is None
    if vault is None:
        from certrotate_shared.vault import Vault

        vault = Vault.from_settings(settings)
    return Dependencies(
        settings=settings,
        box=SecretBox(settings.master_key_bytes(), settings.previous_master_key_bytes()),
        clock=clock or SystemClock(),
        sepm=sepm_factory or sepm_connector(settings, vault),
        hostops_factory=hostops_factory,
        probe=probe,
        vault=vault,
        owns_vault=owns_vault,
    )


def build_spec(settings: Settings, **deps: Any) -> ServiceSpec:
    """The certificates service: its handlers, its commands topic, its tables and loops."""
    from certificates.entrypoints.api import create_api

    dependencies = build_dependencies(settings, **deps)
    return ServiceSpec(
        name="certificates",
        handlers={
            command: functools.partial(handler, deps=dependencies)
            for command, handler in HANDLERS.items()
        },
        topics=lambda prefix: [commands_topic("certificates", prefix)],
        migrations=MIGRATIONS,
        version_table="alembic_version_certificates",
        background=[
            _named(functools.partial(run_jobs, deps=dependencies), "jobs"),
            _named(functools.partial(purge_stale_bundles, deps=dependencies), "bundle_purge"),
        ],
        api=functools.partial(create_api, deps=dependencies),
    )


def build_runtime(
    settings: Settings, *, transport: Transport | None = None, **deps: Any
) -> ServiceRuntime:
    return ServiceRuntime(settings, build_spec(settings, **deps), transport=transport)


def _named(loop: Any, name: str) -> Any:
    # The runtime names background tasks after __name__, which a partial lacks.
    loop.__name__ = name
    return loop
