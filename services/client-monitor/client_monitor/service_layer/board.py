"""The watches this replica runs: resumed at start, started when a command opens one, stopped
when one closes or is cancelled. Leases in the database keep two replicas off one watch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from certrotate_shared.consumer import message_log_fields
from certrotate_shared.envelope import utcnow
from certrotate_shared.failures import describe, is_transient
from certrotate_shared.logs import log_context
from client_monitor.adapters import repository
from client_monitor.domain.budget import CallBudget
from client_monitor.service_layer.scanning import Host, SepmFactory, WatchScanner, lease_until
from client_monitor.settings import Settings

log = logging.getLogger(__name__)

RESTART_AFTER_CRASH_S = 5.0


@dataclass
class _Running:
    scanner: WatchScanner
    task: asyncio.Task[None]


class WatchBoard:
    def __init__(self, settings: Settings, sepm_factory: SepmFactory) -> None:
        self.settings = settings
        self.sepm_factory = sepm_factory
        self.owner = (
            settings.instance_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        # Where this replica's API answers, recorded with its leases (set once it listens).
        self.url: str | None = settings.advertise_url or None
        self._running: dict[str, _Running] = {}
        self._budgets: dict[str, CallBudget] = {}
        self._crashed_at: dict[str, float] = {}
        self._crashes: dict[str, int] = {}  # unexpected crashes per watch, in this process
        self._wake = asyncio.Event()
        self._where: Callable[[], str | None] = lambda: None

    def scanner(self, watch_id: str) -> WatchScanner | None:
        """The live scanner of an open watch run by this replica."""
        running = self._running.get(watch_id)
        return None if running is None else running.scanner

    def _budget(self, site: str) -> CallBudget | None:
        per_minute = self.settings.sepm_calls_per_minute
        if not per_minute:
            return None
        if site not in self._budgets:
            self._budgets[site] = CallBudget(per_minute, burst=self.settings.sepm_call_burst)
        return self._budgets[site]

    def locate(self, where: Callable[[], str | None]) -> None:
        """How to learn this replica's API address once it listens (unless advertised)."""
        self._where = where

    def wake(self) -> None:
        self._wake.set()

    async def run(self, host: Host) -> None:
        """Background loop of the service (ServiceSpec.background)."""
        try:
            while True:
                await self._reconcile(host)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.watch_poll_s)
                self._wake.clear()
        finally:
            await self._stop_all(host)

    async def _reconcile(self, host: Host) -> None:
        self.url = self.url or self._where()
        async with host.uow() as uow:
            held = await repository.claim_open_watches(
                uow.session,
                owner=self.owner,
                url=self.url,
                now=utcnow(),
                until=lease_until(self.settings.lease_s),
            )
            await uow.commit()
        wanted = {r.watch_id: r for r in held}
        for watch_id, running in list(self._running.items()):
            if running.task.done():
                del self._running[watch_id]
                error = None if running.task.cancelled() else running.task.exception()
                if isinstance(error, Exception):
                    # Also after giving up: `wanted` was read before the watch closed.
                    self._crashed_at[watch_id] = time.monotonic()
                if isinstance(error, Exception) and not await self._gave_up(running, error):
                    log.error(
                        "watch %s stopped with an error; restarting it shortly",
                        watch_id,
                        exc_info=error,
                    )
            elif watch_id not in wanted:
                # Cancelled by a command, or our lease went to another replica.
                running.task.cancel()
                del self._running[watch_id]
        for watch_id, record in wanted.items():
            if watch_id in self._running:
                continue
            crashed = self._crashed_at.get(watch_id)
            if crashed is not None and time.monotonic() - crashed < RESTART_AFTER_CRASH_S:
                continue
            scanner = WatchScanner(
                record,
                host=host,
                sepm_factory=self.sepm_factory,
                settings=self.settings,
                owner=self.owner,
                budget=self._budget(record.site),
            )
            # The task copies the context: its lines carry the watch's rotation, site and step.
            with log_context(**message_log_fields(record.envelope, scanner.command)):
                task = asyncio.create_task(scanner.run(), name=f"client-monitor:watch:{watch_id}")
            self._running[watch_id] = _Running(scanner, task)
            log.info("watching %s (site %s)", watch_id, record.site)

    async def _gave_up(self, running: _Running, error: Exception) -> bool:
        """A watch that crashed max_delivery_attempts times on an unexpected (not transient)
        error ends with PropagationWatchFailed instead of being restarted for ever."""
        watch_id = running.scanner.record.watch_id
        if is_transient(error):
            return False
        crashes = self._crashes.get(watch_id, 0) + 1
        self._crashes[watch_id] = crashes
        if crashes < self.settings.max_delivery_attempts:
            return False
        self._crashes.pop(watch_id, None)
        log.error("watch %s failed %d times; giving up", watch_id, crashes, exc_info=error)
        await running.scanner._fail(describe(error))
        return True

    async def _stop_all(self, host: Host) -> None:
        tasks = [r.task for r in self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._running.clear()
        # Hand our watches over at once instead of after the lease runs out.
        try:
            async with host.uow() as uow:
                await repository.release_watches(uow.session, owner=self.owner)
                await uow.commit()
        except Exception as exc:
            log.warning("could not release watch leases: %s", exc)
