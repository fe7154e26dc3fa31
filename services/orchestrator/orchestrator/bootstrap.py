"""Wiring: real or fake dependencies in, a runnable orchestrator out."""

from __future__ import annotations

import asyncio

import httpx

from certrotate_shared.clock import Clock
from certrotate_shared.internal_api import internal_client
from certrotate_shared.leases import replica_name
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.topics import events_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.vault import Vault
from certrotate_shared.wiring import inject, inject_all
from orchestrator.adapters.clients import CertificatesClient, ClientMonitorClient
from orchestrator.entrypoints.api import create_api
from orchestrator.migrations import SCRIPT_LOCATION, VERSION_TABLE
from orchestrator.service_layer import site_targets
from orchestrator.service_layer.callbacks import run_callbacks
from orchestrator.service_layer.campaign_driver import run_campaigns
from orchestrator.service_layer.deps import Deps, TimerAlarm
from orchestrator.service_layer.handlers import HANDLERS
from orchestrator.service_layer.metrics import metrics_access, read_gauges
from orchestrator.service_layer.retention_job import run_retention
from orchestrator.service_layer.rotations import RotationStarter
from orchestrator.service_layer.timers import run_timers
from orchestrator.settings import Settings

SERVICE = "orchestrator"


def build_runtime(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    vault: Vault | None = None,
    certificates_client: httpx.AsyncClient | None = None,
    client_monitor_client: httpx.AsyncClient | None = None,
) -> ServiceRuntime:
    """The orchestrator, its handlers given their dependencies by name: it consumes
    certrotate.events, runs timers, callbacks, campaigns and retention, serves the REST API."""
    clock = clock or settings.clock()

    def db() -> UnitOfWork:
        # The runtime is built last (it takes the bound handlers); a unit of work is only
        # asked for once it runs.
        return runtime.uow()

    vault = vault or Vault.from_settings(settings)
    certificates = CertificatesClient(
        certificates_client
        or internal_client(settings, settings.certificates_url, settings.internal_token),
        settings.internal_token.get_secret_value(),
    )
    alarm = TimerAlarm()
    deps = Deps(
        settings=settings,
        clock=clock,
        db=db,
        vault=vault,
        certificates=certificates,
        client_monitor=ClientMonitorClient(
            client_monitor_client
            or internal_client(settings, settings.client_monitor_url, settings.internal_token)
        ),
        replica=replica_name(settings.instance_id),
        alarm=alarm,
        starter=RotationStarter(
            db=db,
            clock=clock,
            settings=settings,
            vault=vault,
            certificates=certificates,
            alarm=alarm,
        ),
    )
    named = deps.named()
    run_timers_ = inject(run_timers, named)
    run_callbacks_ = inject(run_callbacks, named)
    run_campaigns_ = inject(run_campaigns, named)
    run_retention_ = inject(run_retention, named)

    async def timers(runtime: ServiceRuntime) -> None:
        try:
            # Before any saga moves: workers act only on published sites.
            async with runtime.uow() as uow:
                await site_targets.publish_missing_targets(uow.session, deps.vault)
                await uow.commit()
            await run_timers_()
        finally:
            await asyncio.shield(deps.vault.stop())

    async def callbacks(runtime: ServiceRuntime) -> None:
        await run_callbacks_()

    async def campaigns(runtime: ServiceRuntime) -> None:
        await run_campaigns_()

    async def retention(runtime: ServiceRuntime) -> None:
        await run_retention_()

    spec = ServiceSpec(
        name=SERVICE,
        handlers=inject_all(HANDLERS, named),
        topics=lambda prefix: [events_topic(prefix)],
        migrations=SCRIPT_LOCATION,
        version_table=VERSION_TABLE,
        background=[timers, callbacks, campaigns, retention],
        # Every handler effect is in the database, so a fetched batch can share one transaction.
        batch_transactions=True,
        api=lambda runtime: create_api(runtime, deps),
        gauges=read_gauges,
        metrics_access=lambda authorization, role: metrics_access(
            deps.rt, settings.admin_token.get_secret_value(), authorization, role
        ),
    )
    runtime = ServiceRuntime(settings, spec, transport=transport, clock=clock)
    deps.runtime = runtime
    return runtime
