"""The watches this replica scans: the performer of AwaitPolicyPropagation (WORK in handlers.py;
the shared work runner, certrotate_shared.work, holds each open watch under the shared lease and
runs it until it closes), and where the API finds the live scanner of a watch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from certrotate_shared.failures import describe
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.sepm.connector import SepmConnector
from certrotate_shared.work import WorkContext
from client_monitor.adapters import repository
from client_monitor.adapters.repository import WatchRecord
from client_monitor.domain.budget import CallBudget
from client_monitor.service_layer.scanning import WatchScanner
from client_monitor.settings import Settings

log = logging.getLogger(__name__)


class WatchBoard:
    def __init__(self, settings: Settings, sepm: SepmConnector, *, owner: str) -> None:
        self.settings = settings
        self.sepm = sepm
        self.owner = owner  # this replica's name in the watches' leases
        # Where this replica's API answers, recorded with its leases (set once it listens).
        self.url: str | None = settings.advertise_url or None
        self._scanners: dict[str, WatchScanner] = {}
        self._budgets: dict[str, CallBudget] = {}
        self._where: Callable[[], str | None] = lambda: None

    def scanner(self, watch_id: str) -> WatchScanner | None:
        """The live scanner of an open watch run by this replica."""
        return self._scanners.get(watch_id)

    def locate(self, where: Callable[[], str | None]) -> None:
        """How to learn this replica's API address once it listens (unless advertised)."""
        self._where = where

    def address(self) -> str | None:
        """This replica's API address, written with each watch it takes."""
        self.url = self.url or self._where()
        return self.url

    def _budget(self, site: str) -> CallBudget | None:
        per_minute = self.settings.sepm_calls_per_minute
        if not per_minute:
            return None
        if site not in self._budgets:
            self._budgets[site] = CallBudget(per_minute, burst=self.settings.sepm_call_burst)
        return self._budgets[site]

    async def _scanner(self, ctx: WorkContext) -> WatchScanner | None:
        # The row as it is now (counts of a previous run), not as it was when taken.
        async with ctx.uow() as uow:
            record = await repository.get_watch(uow.session, ctx.work.key)
        if record is None or record.status != repository.OPEN:
            return None
        return self._new_scanner(record, ctx)

    def _new_scanner(self, record: WatchRecord, ctx: WorkContext) -> WatchScanner:
        return WatchScanner(
            record,
            host=ctx.runtime,
            connector=self.sepm,
            settings=self.settings,
            owner=self.owner,
            budget=self._budget(record.site),
        )

    async def watch(self, command: AwaitPolicyPropagation, ctx: WorkContext) -> datetime | None:
        """Scan until the watch closes (reached, stalled, timed out, cancelled)."""
        scanner = await self._scanner(ctx)
        if scanner is None:
            return None
        watch_id = ctx.work.key
        self._scanners[watch_id] = scanner
        log.info("watching %s (site %s)", watch_id, scanner.record.site)
        try:
            await scanner.run()
        finally:
            if self._scanners.get(watch_id) is scanner:
                del self._scanners[watch_id]
        return None

    async def give_up(self, ctx: WorkContext, exc: Exception) -> None:
        """A watch that failed max_delivery_attempts times on an unexpected (not transient)
        error ends with PropagationWatchFailed instead of being restarted for ever."""
        scanner = await self._scanner(ctx)
        if scanner is not None:
            await scanner._fail(describe(exc))
