"""One watch at work: a full scan of /computers, then incremental scans, until it closes."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Protocol, TypeVar

from certrotate_shared.clock import Clock
from certrotate_shared.messages.client_monitor import (
    PolicyPropagated,
    PropagationCounts,
    PropagationProgressed,
    PropagationStalled,
    PropagationWatchFailed,
)
from certrotate_shared.sepm.api import SepmApi, SepmDomain, SepmError
from certrotate_shared.sepm.connector import SepmConnector
from certrotate_shared.sepm.domains import site_domains
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.utc_timestamps import as_utc
from client_monitor.adapters import repository, stored_clients
from client_monitor.adapters.computer_pages import iter_fleet_pages, read_ahead
from client_monitor.adapters.memory import pin_mmap_threshold
from client_monitor.adapters.repository import WatchRecord
from client_monitor.domain.budget import CallBudget
from client_monitor.domain.clients import ClientTable
from client_monitor.domain.progress import ProgressThrottle, RateTracker
from client_monitor.domain.propagation import (
    Tally,
    Verdict,
    judge,
    stall_reason,
    tally,
)
from client_monitor.service_layer.client_lists import ClientLists
from client_monitor.service_layer.pacing import PacedSepm
from client_monitor.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class Host(Protocol):
    """What a watch needs from its service: time, transactions, SEPM."""

    @property
    def clock(self) -> Clock: ...  # read only: a host may hold any Clock (manual, scaled)

    def uow(self) -> UnitOfWork: ...


class WatchScanner:
    """Scans the fleet for one watch and reports; holds the watch's client table."""

    def __init__(
        self,
        record: WatchRecord,
        *,
        host: Host,
        connector: SepmConnector,
        settings: Settings,
        owner: str,
        budget: CallBudget | None = None,
    ) -> None:
        self.record = record
        # The site's SEPM call budget, shared by the watches of the site in this replica.
        self.budget = budget
        self.command = record.command
        self.deadline = as_utc(self.command.deadline)
        self.host = host
        self.settings = settings
        self.owner = owner
        self._connect = connector
        pin_mmap_threshold()  # a table of 1M clients frees arrays of megabytes as it grows
        self.table = ClientTable(self.command.groups)
        self.lists = ClientLists(
            self.table,
            stale_horizon_days=self.command.stale_horizon_days,
            now=lambda: self.host.clock.now(),
        )
        self.tally: Tally | None = None
        self.scanned_at: datetime | None = None
        self.scans = 0
        self.last_error: str | None = None
        self._since_ms: int | None = None  # None: the next scan is a full scan
        self._domains: list[SepmDomain] | None = None
        self._full_at: tuple[datetime, float] | None = None  # (clock time, real monotonic)
        self._rates = RateTracker(window=settings.forecast_window_scans)
        self._throttle = ProgressThrottle(
            settings.progress_min_interval_real_s, settings.progress_min_change_percent
        )

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        sepm: SepmApi | None = None
        try:
            while True:
                try:
                    if sepm is None:
                        sepm = await self._connect(self.command.site)
                        if self.budget is not None:
                            sepm = PacedSepm(sepm, self.budget)
                    await self.scan(sepm)
                except SepmError as exc:
                    if not exc.retryable:
                        await self._fail(f"SEPM refused the scan: {exc}")
                        return
                    self._scan_failed(exc)
                except (OSError, TimeoutError) as exc:
                    self._scan_failed(exc)
                if not await self.report():
                    return
                await self._pause()
        finally:
            if sepm is not None:
                try:
                    await sepm.close()
                except Exception as exc:  # closing must not hide why the loop ended
                    log.debug("closing the SEPM session failed: %s", exc)

    def _scan_failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("watch %s: scan failed, will retry: %s", self.record.watch_id, self.last_error)

    async def scan(self, sepm: SepmApi) -> None:
        """One pass over /computers: full when due, else changes since the last pass."""
        now = self.host.clock.now()
        full = self._since_ms is None or self._full_rescan_due(now)
        since = 0 if full else self._since_ms
        # Every domain: clients of another domain than the API account's are clients too.
        # Domains are asked for on full scans only: one SEPM call less per incremental scan.
        if full or self._domains is None:
            self._domains = await site_domains(sepm)
        pages = iter_fleet_pages(
            sepm,
            domains=self._domains,
            last_update_ms=since or 0,
            page_size=self.settings.page_size,
        )
        async for page in read_ahead(pages):
            self.table.ingest(page)
            await asyncio.sleep(0)  # let the API and the consumer breathe during a big scan
        # Only a completed pass moves the mark: an interrupted one is re-done from the old one.
        # Not past the pass's start: a client read early in a long (paced) pass that changes
        # later has a lastUpdateTime after the start, and maybe before the newest one seen.
        newest = min(self.table.max_last_update_ms, _ms(now))
        self._since_ms = max(0, newest - self.settings.last_update_overlap_ms)
        if full:
            self._full_at = (now, time.monotonic())
        self.scans += 1
        self.last_error = None
        self.scanned_at = self.host.clock.now()
        self.tally = tally(
            self.table,
            now_ms=_ms(self.scanned_at),
            stale_horizon_days=self.command.stale_horizon_days,
        )
        self._rates.add(self.scanned_at, self.tally.reached)

    def _full_rescan_due(self, now: datetime) -> bool:
        if self._full_at is None:
            return True
        clock_at, real_at = self._full_at
        return (
            (now - clock_at).total_seconds() >= self.settings.full_rescan_interval_s
            and time.monotonic() - real_at >= self.settings.full_rescan_min_real_s
        )

    async def _pause(self) -> None:
        left = (self.deadline - self.host.clock.now()).total_seconds()
        wait = max(0.0, min(self.settings.scan_interval_s, left))
        await asyncio.gather(
            self.host.clock.sleep(wait), asyncio.sleep(self.settings.min_scan_interval_real_s)
        )

    # -- reporting ------------------------------------------------------------------------
    async def report(self) -> bool:
        """Emit what the last scan means; False once the watch is closed (or no longer ours)."""
        now = self.host.clock.now()
        verdict = judge(
            self.tally, threshold=self.command.threshold, deadline=self.deadline, now=now
        )
        if verdict is Verdict.PROPAGATED:
            await self._close("propagated", self.counts(PolicyPropagated, now))
            return False
        if verdict is Verdict.STALLED:
            reason = stall_reason(
                self.tally, threshold=self.command.threshold, deadline=self.deadline
            )
            await self._close("stalled", self.counts(PropagationStalled, now, reason=reason))
            return False
        if self.tally is None:
            return True
        real_now = time.monotonic()
        if not self._throttle.due(self.tally.percent, real_now):
            return True
        event = self.counts(PropagationProgressed, now)
        async with self.host.uow() as uow:
            held = await repository.save_counts(
                uow.session, self.record.watch_id, owner=self.owner, counts=_counts(event)
            )
            if held:
                uow.emit(event, saga_id=self.record.saga_id, causation=self.record.envelope)
            await uow.commit()
        if held:
            self._throttle.reported(self.tally.percent, real_now)
        return held

    def counts(self, cls: type[PropagationCounts], now: datetime, **extra: Any) -> Any:
        t = self.tally or Tally(0, 0, 0, 0, {"0-1": 0, "1-7": 0, "7-30": 0, "30+": 0}, 0, 0, 0)
        remaining = t.needed(self.command.threshold) - t.seen_reached
        return cls(
            site=self.command.site.site,
            watch_id=self.record.watch_id,
            total=t.total,
            reached=t.reached,
            pending_online=t.pending_online,
            pending_offline=t.pending_offline,
            pending_offline_by_days=t.pending_offline_by_days,
            orphan_risk=t.orphan_risk,
            stale=t.stale,
            percent=t.percent,
            forecast_complete_at=self._rates.forecast(remaining=remaining, now=now)
            if self.tally
            else None,
            observed_at=self.scanned_at or now,
            **extra,
        )

    async def _close(self, status: str, event: PropagationCounts) -> None:
        async with self.host.uow() as uow:
            closed = await repository.close_watch(
                uow.session,
                self.record.watch_id,
                owner=self.owner,
                status=status,
                outcome_type=event.type_name(),
                outcome=event.model_dump(mode="json"),
                counts=_counts(event),
                now=self.host.clock.now(),
            )
            if closed:
                await stored_clients.save_pending_clients(
                    uow.session, self.record.watch_id, self.lists.pending_records()
                )
                uow.emit(event, saga_id=self.record.saga_id, causation=self.record.envelope)
            await uow.commit()
        log.info("watch %s %s: %s", self.record.watch_id, status, _counts(event))

    async def _fail(self, reason: str) -> None:
        event = PropagationWatchFailed(
            site=self.command.site.site,
            watch_id=self.record.watch_id,
            reason=reason,
            retryable=False,
        )
        async with self.host.uow() as uow:
            if await repository.close_watch(
                uow.session,
                self.record.watch_id,
                owner=self.owner,
                status="failed",
                outcome_type=event.type_name(),
                outcome=event.model_dump(mode="json"),
                counts=None,
                now=self.host.clock.now(),
            ):
                uow.emit(event, saga_id=self.record.saga_id, causation=self.record.envelope)
            await uow.commit()
        log.error("watch %s failed: %s", self.record.watch_id, reason)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _counts(event: PropagationCounts) -> dict[str, Any]:
    return event.model_dump(mode="json")
