"""Long-running work, the same way in every worker service.

A handler that accepts a long-running command (a certificate install, a replication restore,
a propagation watch) only records a row in its service's work table and wakes the runner once
its transaction commits. The runner, a background loop, takes due rows under the shared lease
(certrotate_shared.leases), renews them while it works, and hands each to the performer its
command's type names in the service's WORK table, which sits beside HANDLERS at the bottom of
service_layer/handlers.py. So a command is followed from Kafka to SEPM through two tables:
HANDLERS[type] accepts it, WORK[type] performs it.

A performer makes one pass: it records its progress and, in the end, the command's outcome
(in its own transactions), and returns when to look at the work again, or None when the work
needs nothing more from this runner (it has its outcome, or waits for a person). Failures are
classified once (certrotate_shared.failures): a transient error is waited out with back-off and
never counted; after `max_attempts` unexpected ones, `give_up` answers the command with its
typed failure instead of retrying for ever. A replica that is killed stops renewing; once its
lease has run out, another replica takes its work over and carries on from what was recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.clock import Clock
from certrotate_shared.consumer import handling
from certrotate_shared.envelope import Envelope, Message
from certrotate_shared.failures import backoff_delay, describe, is_transient
from certrotate_shared.leases import Lease

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime
    from certrotate_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Work:
    """One piece of long-running work, as its table holds it."""

    key: str
    envelope: Envelope
    # What the service's table keeps besides the command (a job's confirmed tasks...).
    details: Any = None

    def command(self) -> Message:
        return self.envelope.message()


@dataclass(frozen=True)
class WorkContext:
    """What a performer gets besides its command: its work row and the service it runs in."""

    work: Work
    runtime: ServiceRuntime

    def uow(self) -> UnitOfWork:
        """A new transaction on the service's database."""
        return self.runtime.uow()

    def emit(self, uow: UnitOfWork, message: Message) -> None:
        """Queue a message caused by the work's command (same saga, same correlation)."""
        uow.emit(message, saga_id=self.work.envelope.saga_id, causation=self.work.envelope)


# One pass at a piece of work: when to look again, or None when this runner is done with it.
Perform = Callable[[Any, WorkContext], Awaitable[datetime | None]]
# Out of attempts: answer the command with its typed failure (and close its row).
GiveUp = Callable[[WorkContext, Exception], Awaitable[None]]


class WorkTable(Protocol):
    """A service's work table, as the runner reads and writes it."""

    async def due(
        self, session: AsyncSession, lease: Lease, *, now: datetime, limit: int
    ) -> list[Work]:
        """Rows that can be worked on now and that nobody holds, oldest first."""
        ...

    def taken(self, now: datetime) -> dict[str, Any]:
        """Values written with a take (a status, the holder's address...)."""
        ...

    def again(self, at: datetime) -> dict[str, Any]:
        """Values written when the runner lets a row go until `at`."""
        ...


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
        max_attempts: int,
        retry_base_s: float,
        retry_max_s: float,
        concurrency: int | None = None,
    ) -> None:
        self.service = service
        self.table = table
        self.lease = lease
        self.perform = perform
        self.give_up = give_up
        self.clock = clock
        self.poll_s = poll_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.concurrency = concurrency
        self._held: dict[str, _Held] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for work now: handlers call it once their transaction has committed
        (`ctx.uow.on_commit(work.wake)`), so the runner never finds the row missing."""
        self._wake.set()

    def running(self) -> dict[str, Work]:
        """The work this replica holds now, by key."""
        return {key: held.work for key, held in self._held.items()}

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
        if not transient and held.failures >= self.max_attempts:
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
            held.failures + held.transient, base_s=self.retry_base_s, cap_s=self.retry_max_s
        )
        log.warning(
            "%s %s failed (%s, attempt %d); retrying in %.1f s: %s",
            kind,
            work.key,
            "transient" if transient else f"unexpected, {held.failures}/{self.max_attempts}",
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
            kept = await self.lease.renew(uow.session, keys)
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


def later(clock: Clock, seconds: float) -> datetime:
    """When to look at a piece of work again, on the service's clock."""
    return clock.now() + timedelta(seconds=seconds)
