"""What handlers, loops and routes share: the runtime, clients and the vault."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from certrotate_shared.vault import Vault
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime


class LazyVault:
    """The shared vault, opened on first use."""

    def __init__(self, settings: Settings, vault: Vault | None) -> None:
        self._settings = settings
        self._vault = vault
        self._owned = vault is None
        self._lock = asyncio.Lock()

    async def get(self) -> Vault:
        async with self._lock:
            if self._vault is None:
                vault = Vault(
                    self._settings.vault_url,
                    self._settings.master_key_bytes(),
                    schema=self._settings.vault_schema,
                )
                await vault.start()
                self._vault = vault
        return self._vault

    async def close(self) -> None:
        if self._owned and self._vault is not None:
            await self._vault.stop()
            self._vault = None


@dataclass
class Deps:
    settings: Settings
    certificates: httpx.AsyncClient
    client_monitor: httpx.AsyncClient
    vault: LazyVault
    runtime: ServiceRuntime | None = None
    # Set when a transition schedules a timer, so the timer loop re-reads the next due time.
    timers_changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def rt(self) -> ServiceRuntime:
        assert self.runtime is not None, "the orchestrator runtime is not built yet"
        return self.runtime

    def now(self) -> datetime:
        return self.rt.clock.now()
