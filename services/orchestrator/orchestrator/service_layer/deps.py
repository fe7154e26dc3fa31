"""The orchestrator's dependencies, each under the name a handler, loop or service function
gives the parameter that takes it (`clock`, `db`, `vault`...): bootstrap builds them once and
binds them by name (certrotate_shared.wiring); routes reach them through FastAPI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certrotate_shared.clock import Clock
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.vault import Vault
from orchestrator.adapters.clients import CertificatesClient, ClientMonitorClient
from orchestrator.service_layer.auth_failures import FailedAuthentications
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime
    from orchestrator.service_layer.rotations import RotationStarter

# A new unit of work on the orchestrator's database: `async with db() as uow`.
Database = Callable[[], UnitOfWork]


class TimerAlarm:
    """Wakes the timer loop when a transition schedules a timer due before the loop would
    wake (or, `ring`, whenever a saga may have new timers)."""

    def __init__(self) -> None:
        self.rung = asyncio.Event()
        # The due time the timer loop sleeps until (None: it sleeps a whole poll, or is starting).
        self.wake_at: datetime | None = None

    def scheduled(self, due: Iterable[datetime]) -> None:
        wake_at = self.wake_at
        if wake_at is None or any(d < wake_at for d in due):
            self.rung.set()

    def ring(self) -> None:
        self.rung.set()


@dataclass
class Deps:
    settings: Settings
    clock: Clock
    db: Database
    vault: Vault
    certificates: CertificatesClient
    client_monitor: ClientMonitorClient
    # This replica's name in the leases it holds (certrotate_shared.leases.replica_name).
    replica: str
    alarm: TimerAlarm
    # What starting a rotation needs (the API, campaigns and webhook triggers start them).
    starter: RotationStarter
    # Set once the runtime exists (it is built last: it takes the bound handlers).
    runtime: ServiceRuntime | None = None
    # Failed bearer tokens per client address, counted in real seconds: guessing is a
    # real-world attack even under a rehearsal's accelerated clock. Epoch seconds, not
    # monotonic ones: the replicas compare their instants in the database they share.
    failed_logins: FailedAuthentications | None = None
    wall_clock: Callable[[], float] = time.time

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

    def named(self) -> dict[str, Any]:
        """What handlers and loops may ask for, by parameter name."""
        return {
            "settings": self.settings,
            "clock": self.clock,
            "db": self.db,
            "vault": self.vault,
            "certificates": self.certificates,
            "client_monitor": self.client_monitor,
            "replica": self.replica,
            "alarm": self.alarm,
            "starter": self.starter,
        }
