"""The runner of long-running work (see certrotate_shared.work for what it runs): one
background loop per worker service that takes due rows under the shared lease, renews them,
dispatches each to its performer, retries, gives up, and hands its work over on a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certrotate_shared.clock import Clock
from certrotate_shared.dispatch import handling
from certrotate_shared.envelope import Message
from certrotate_shared.failures import backoff_delay, describe, is_transient
from certrotate_shared.leases import Lease
from certrotate_shared.work import GiveUp, Perform, Work, WorkContext, WorkTable

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime
    from certrotate_shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkRetryPolicy:
    """How the runner retries a pass that raised: transient errors are waited out without
    counting; after `max_attempts` unexpected ones the command gets its typed failure."""

    max_attempts: int
    base_s: float  # first back-off, doubling per failure
    max_s: float  # longest back-off

    @classmethod
    def of(cls, settings: ServiceSettings) -> WorkRetryPolicy:
        """The service's delivery settings, the same the consumer retries its records with."""
        return cls(
            max_attempts=settings.max_delivery_attempts,
            base_s=settings.retry_base_delay_s,
            max_s=settings.transient_retry_max_delay_s,
        )


@dataclass
class _Held:
    work: Work
    task: asyncio.Task[datetime | None] | None = None
    retry_at: float | None = None  # loop time of the next try after a failure
    failures: int = 0  # unexpected ones, towards max_attempts
    transient: int = 0


class LeasedWork:
    """The background runner of a worker service's long-running commands."""

    def __init__(
        self,
        *,
        service: str,
        table: WorkTable,
        lease: Lease,
        perform: Mapping[type[Message], Perform],
        give_up: GiveUp,
        clock: Clock,
        poll_s: float,
        retries: WorkRetryPolicy,
        concurrency: int | None = None,
    ) -> None:
        self.service = service
        self.table = table
        self.lease = lease
        self.perform = perform
        self.give_up = give_up
        self.clock = clock
        self.poll_s = poll_s
        self.retries = retries
        self.concurrency = concurrency
        self._held: dict[str, _Held] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for work now: handlers call it once their transaction has committed
        (`ctx.uow.on_commit(work.wake)`), so the runner never finds the row missing."""
        self._wake.set()

    async def run(self, runtime: ServiceRuntime) -> None:
        """Background loop of the service (ServiceSpec.background), until cancelled."""
        loop = asyncio.get_running_loop()
        # Renewing is also how a replica learns that a row closed under it (a cancel): often.
        renew_every = min(self.poll_s, self.lease.seconds / 3)
        renewed = held_until = loop.time()
        woken = False
        try:
            while True:
                try:
                    await self._collect(runtime)
                    await self._take(runtime)
                    if woken or loop.time() - renewed >= renew_every:
                        await self._renew(runtime)
                        renewed = loop.time()
                    held_until = renewed + self.lease.seconds
                except Exception as exc:  # the database is away: keep what runs, for now
                    log.warning("%s work runner: %s", self.service, describe(exc))
                    if loop.time() >= held_until:
                        # Our holds have run out: another replica may be working on them.
                        self._abandon()
                self._start_due(runtime)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_wait(loop.time()))
                woken = self._wake.is_set()
                self._wake.clear()
        finally:
            await self._stop(runtime)

    def _abandon(self) -> None:
        for held in self._held.values():
            if held.task is not None:
                held.task.cancel()
        self._held.clear()

    def _next_wait(self, now: float) -> float:
        wait = min(self.poll_s, self.lease.seconds / 3)
        for held in self._held.values():
            if held.task is None and held.retry_at is not None:
                wait = min(wait, max(0.0, held.retry_at - now))
        return wait

    async def _take(self, runtime: ServiceRuntime) -> None:
        free = None if self.concurrency is None else self.concurrency - len(self._held)
        if free is not None and free <= 0:
            return
        now = self.clock.now()
        async with runtime.uow() as uow:
            candidates = await self.table.due(
                uow.session, self.lease, now=now, limit=free if free is not None else 10_000
            )
            taken = [
                work
                for work in candidates
                if work.key not in self._held
                and await self.lease.take(uow.session, work.key, **self.table.taken(now))
            ]
            await uow.commit()
        for work in taken:
            self._held[work.key] = _Held(work)

    def _start_due(self, runtime: ServiceRuntime) -> None:
        now = asyncio.get_running_loop().time()
        for key, held in self._held.items():
            if held.task is None and (held.retry_at is None or held.retry_at <= now):
                held.retry_at = None
                held.task = asyncio.create_task(
                    self._pass(WorkContext(held.work, runtime)), name=f"{self.service}:work:{key}"
                )
                self._wake_when_done(held.task)

    def _wake_when_done(self, task: asyncio.Task[Any]) -> None:
        task.add_done_callback(lambda _: self._wake.set())

    async def _pass(self, ctx: WorkContext) -> datetime | None:
        command = ctx.work.command()
        perform = self.perform.get(type(command))
        if perform is None:
            raise TypeError(f"{self.service} has no performer for {type(command).__name__}")
        with handling(self.service, ctx.work.envelope, command, verb="work"):
            return await perform(command, ctx)

    async def _collect(self, runtime: ServiceRuntime) -> None:
        """Let go of finished passes (with when to look again), schedule retries of failed
        ones, give up on those out of attempts."""
        for key, held in list(self._held.items()):
            task = held.task
            if task is None or not task.done():
                continue
            held.task = None
            if task.cancelled():
                del self._held[key]
                continue
            error = task.exception()
            if error is None:
                del self._held[key]
                await self._let_go(runtime, key, task.result())
            elif isinstance(error, Exception):
                await self._after_error(runtime, held, error)
            else:
                del self._held[key]

    async def _let_go(self, runtime: ServiceRuntime, key: str, again: datetime | None) -> None:
        try:
            async with runtime.uow() as uow:
                values = self.table.again(again) if again is not None else {}
                await self.lease.release(uow.session, key, **values)
                await uow.commit()
        except Exception as exc:
            # Our hold runs out on its own and the work is taken again from what it recorded.
            log.warning("%s could not let %s go: %s", self.service, key, describe(exc))

    async def _after_error(self, runtime: ServiceRuntime, held: _Held, exc: Exception) -> None:
        work = held.work
        transient = is_transient(exc)
        if transient:
            held.transient += 1
        else:
            held.failures += 1
        kind = work.envelope.type
        retries = self.retries
        if not transient and held.failures >= retries.max_attempts:
            log.error(
                "%s %s failed for good after %d attempt(s): %s",
                kind,
                work.key,
                held.failures,
                describe(exc),
                exc_info=exc,
            )
            del self._held[work.key]
            try:
                await self.give_up(WorkContext(work, runtime), exc)
            except Exception as failure:
                log.warning("%s %s: %s", kind, work.key, describe(failure))
            await self._let_go(runtime, work.key, None)
            return
        delay = backoff_delay(
            held.failures + held.transient, base_s=retries.base_s, cap_s=retries.max_s
        )
        log.warning(
            "%s %s failed (%s, attempt %d); retrying in %.1f s: %s",
            kind,
            work.key,
            "transient" if transient else f"unexpected, {held.failures}/{retries.max_attempts}",
            held.failures + held.transient,
            delay,
            describe(exc),
            exc_info=None if transient else exc,
        )
        # Still held (and renewed) meanwhile: the next try is this replica's.
        held.retry_at = asyncio.get_running_loop().time() + delay

    async def _renew(self, runtime: ServiceRuntime) -> None:
        """Keep holding our work; stop any pass another replica took over (this one stalled
        past its lease), so that two replicas never act on one piece of work at once."""
        keys = list(self._held)
        if not keys:
            return
        async with runtime.uow() as uow:
            kept = await self.lease.renew(uow.session, keys, **self.table.kept())
            await uow.commit()
        for key in keys:
            held = self._held.get(key)
            if key in kept or held is None:
                continue
            if held.task is not None and not held.task.done():
                log.warning("%s %s is no longer ours; stopping it", held.work.envelope.type, key)
                held.task.cancel()
            elif held.task is None:
                del self._held[key]

    async def _stop(self, runtime: ServiceRuntime) -> None:
        tasks = [held.task for held in self._held.values() if held.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._held.clear()
        # Hand our work over at once instead of after the lease runs out.
        try:
            async with runtime.uow() as uow:
                await self.lease.release_all(uow.session)
                await uow.commit()
        except Exception as exc:
            log.warning("%s could not hand its work over: %s", self.service, describe(exc))
