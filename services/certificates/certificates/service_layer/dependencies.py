"""What handlers, jobs and the API get injected: real adapters in production, fakes in tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from certificates.service_layer.server_certificate import Probe
from certificates.settings import Settings
from certrotate_shared.clock import Clock
from certrotate_shared.hostops import HostOperations
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.sepm import SepmApi

# (site, vault) -> SepmApi, sync or async (certrotate_shared.sepm.client.connect_site).
SepmFactory = Callable[[SiteTarget, Any], Any]
# (site, vault, *, confirmed_tasks) -> HostOperations (certrotate_shared.hostops.host_operations_for).
HostOpsFactory = Callable[..., Any]


@dataclass
class Dependencies:
    settings: Settings
    box: SecretBox
    clock: Clock  # real time: certificate validity, bundle TTL and job leases
    sepm_factory: SepmFactory
    hostops_factory: HostOpsFactory
    probe: Probe
    vault: Any = None  # certrotate_shared.vault.Vault, started by the job runner
    jobs_waiting: asyncio.Event = field(default_factory=asyncio.Event)

    def wake_jobs(self) -> None:
        """A job was queued: the runner looks now instead of at its next poll."""
        self.jobs_waiting.set()

    async def connect_sepm(self, site: SiteTarget) -> SepmApi:
        return await _resolved(self.sepm_factory(site, self.vault))

    async def host_operations(
        self, site: SiteTarget, confirmed_tasks: Collection[str]
    ) -> HostOperations:
        made = self.hostops_factory(site, self.vault, confirmed_tasks=tuple(confirmed_tasks))
        return await _resolved(made)


async def _resolved(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
