"""The retention sweep as a durable periodic job: due once per interval (clock time), run by
one replica at a time under the shared lease of long-running work, its hold renewed while it
sweeps; a run cut short is taken up again once the hold runs out (real seconds)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from certrotate_shared.clock import Clock
from certrotate_shared.leases import Lease
from orchestrator.adapters import periodic_jobs
from orchestrator.adapters.clients import CertificatesClient
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.retention import sweep
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


JOB = "retention"


# Real seconds between looks at the job's due time (the interval itself is in clock time).
POLL_SECONDS = 30.0


# Real seconds a replica's hold on the job lasts unless renewed (every third of it, while the
# sweep runs): a replica killed mid-run is taken over after this, and a sweep is safe to repeat.
LEASE_SECONDS = 120.0


T = TypeVar("T")


async def run_due(
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    certificates: CertificatesClient,
    replica: str,
) -> dict[str, int] | None:
    """Run the job if it is due and no other replica holds it; None when it did not run."""
    interval = timedelta(seconds=settings.retention_interval_seconds)
    now = clock.now()
    lease = Lease(periodic_jobs.due_jobs(now), owner=replica, seconds=LEASE_SECONDS)
    async with db() as uow:
        await periodic_jobs.ensure(uow.session, JOB, due_at=now)
        taken = await lease.take(uow.session, JOB)
        await uow.commit()
    if not taken:
        return None
    error: str | None = None
    counts: dict[str, int] | None = None
    try:
        counts = await _holding(
            lease, db, sweep(db=db, clock=clock, settings=settings, certificates=certificates)
        )
    except _HoldLostError:
        log.warning("retention: another replica took the job over; this run stops")
        return None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("retention job failed; it runs again at its next interval: %s", error)
    async with db() as uow:
        ended = clock.now()
        done = periodic_jobs.finished(now=ended, next_due=ended + interval, error=error)
        await lease.release(uow.session, JOB, **done)
        await uow.commit()
    return counts


class _HoldLostError(Exception):
    """The replica stalled past its hold and another took the job over."""


async def _holding(lease: Lease, db: Database, run: Coroutine[Any, Any, T]) -> T:
    """`run`, renewing the hold on the job while it runs (a sweep of a large estate outlasts
    one lease); stopped if the hold was lost meanwhile."""
    task = asyncio.ensure_future(run)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=lease.seconds / 3)
            if done:
                return task.result()
            async with db() as uow:
                kept = await lease.renew(uow.session, [JOB])
                await uow.commit()
            if not kept:
                raise _HoldLostError
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_retention(
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    certificates: CertificatesClient,
    replica: str,
) -> None:
    """Background loop: the job's schedule is in the database, so a restart keeps it."""
    while True:
        try:
            await run_due(
                db=db, clock=clock, settings=settings, certificates=certificates, replica=replica
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention loop failed; retrying")
        await asyncio.sleep(POLL_SECONDS)
