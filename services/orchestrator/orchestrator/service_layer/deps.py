"""What handlers, loops and routes share: the runtime, clients and the vault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from certrotate_shared.vault import Vault
from orchestrator.service_layer.auth_failures import FailedAuthentications
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime


@dataclass
class Deps:
    settings: Settings
    certificates: httpx.AsyncClient
    client_monitor: httpx.AsyncClient
    vault: Vault
    runtime: ServiceRuntime | None = None
    # Set when a transition schedules a timer, so the timer loop re-reads the next due time.
    timers_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # The due time the timer loop sleeps until (None: it sleeps a whole poll, or is starting).
    timer_wake_at: datetime | None = None
    # Failed bearer tokens per client address, counted in real (monotonic) seconds: guessing
    # is a real-world attack even under a rehearsal's accelerated clock.
    failed_logins: FailedAuthentications | None = None
    wall_clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.failed_logins is None:
            self.failed_logins = FailedAuthentications(
                limit=self.settings.auth_failure_limit,
                window=self.settings.auth_failure_window_seconds,
            )

    @property
    def rt(self) -> ServiceRuntime:
        assert self.runtime is not None, "the orchestrator runtime is not built yet"
        return self.runtime

    def timers_scheduled(self, due: Iterable[datetime]) -> None:
        """Wake the timer loop if a saga now has a timer due before the loop would wake."""
        wake_at = self.timer_wake_at
        if wake_at is None or any(d < wake_at for d in due):
            self.timers_changed.set()

    def now(self) -> datetime:
        return self.rt.clock.now()
