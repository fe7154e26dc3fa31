"""What handlers, jobs and the API get injected: real adapters in production, fakes in tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from certificates.service_layer.served_certificate import Probe
from certificates.settings import Settings
from certrotate_shared import site_directory
from certrotate_shared.clock import Clock
from certrotate_shared.hostops import HostOperations
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.sepm import SepmApi
from certrotate_shared.sepm.connector import SepmConnector

# (site, vault, *, confirmed_tasks) -> HostOperations (certrotate_shared.hostops.open_host_operations).
HostOpsFactory = Callable[..., Any]


@dataclass
class Dependencies:
    settings: Settings
    box: SecretBox
    clock: Clock  # real time by default: certificate validity, bundle TTL
    sepm: SepmConnector
    hostops_factory: HostOpsFactory
    probe: Probe
    vault: Any = None  # certrotate_shared.vault.Vault
    # True when we made the vault: we start it on first use (not at start-up, where its
    # migration would race other services' migrations in the same process) and stop it.
    owns_vault: bool = False
    # The work runner's wake (set in bootstrap): the retention purge queues jobs too.
    wake_jobs: Callable[[], None] = lambda: None
    _vault_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _vault_started: bool = False

    async def ready_vault(self) -> Any:
        if self.owns_vault and not self._vault_started:
            async with self._vault_lock:
                if not self._vault_started:
                    await self.vault.start()
                    self._vault_started = True
        return self.vault

    async def close(self) -> None:
        if self.owns_vault and self._vault_started:
            await self.vault.stop()
            self._vault_started = False

    async def published_site(self, site: SiteTarget) -> site_directory.AuthoritativeSite:
        """The site a command names, as the orchestrator published it (never its fields)."""
        return await site_directory.resolve(site, await self.ready_vault())

    async def published_site_named(self, site: str) -> site_directory.AuthoritativeSite:
        """A site this service knows by name only (its own records), as published."""
        return await site_directory.resolve_named(site, await self.ready_vault())

    async def connect_sepm(self, site: SiteTarget) -> SepmApi:
        return await self.sepm(site)

    async def host_operations(
        self, site: SiteTarget, confirmed_tasks: Collection[str]
    ) -> HostOperations:
        vault = await self.ready_vault()
        made = self.hostops_factory(site, vault, confirmed_tasks=tuple(confirmed_tasks))
        return await _resolved(made)


async def _resolved(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
