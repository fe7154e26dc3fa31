"""Destroying bundles no rotation ever used, once they are older than the TTL; forgetting the
messages handled longer ago than the inbox's window, and the jobs that finished after their
rotation's records were purged (the backup deletions that purge queued, and those still
unfinished then)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from certificates.adapters import jobs, store
from certificates.service_layer.dependencies import Dependencies
from certrotate_shared.message_retention import purge_inbox_logged

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

# Finished jobs forgotten per transaction: a short lock against the job runner.
FORGET_BATCH = 500


async def purge_once(runtime: ServiceRuntime, deps: Dependencies) -> list[str]:
    cutoff = deps.clock.now() - timedelta(seconds=deps.settings.bundle_ttl_s)
    async with runtime.uow() as uow:
        purged = await store.purge_unreferenced(uow.session, created_before=cutoff)
        await uow.commit()
    if purged:
        log.info("purged %d unused bundle(s) older than the TTL: %s", len(purged), purged)
    return purged


async def forget_finished_after_purge(runtime: ServiceRuntime, *, batch: int = FORGET_BATCH) -> int:
    """Forget the jobs of purged rotations that finished (their answer is sent: the outbox has
    it), with their tasks and recorded answers, `batch` per transaction; how many."""
    forgotten = 0
    while True:
        async with runtime.uow() as uow:
            done = await jobs.forget_finished_after_purge(uow.session, limit=batch)
            await uow.commit()
        forgotten += done
        if done < batch:
            break
        await asyncio.sleep(0)  # let the runner's transactions through between batches
    if forgotten:
        log.info("forgot %d job(s) that finished after their rotation was purged", forgotten)
    return forgotten


async def purge_stale_bundles(runtime: ServiceRuntime, deps: Dependencies) -> None:
    """Background loop."""
    while True:
        try:
            await purge_once(runtime, deps)
        except Exception:
            log.exception("purging stale bundles failed; trying again later")
        try:
            await purge_inbox_logged(
                runtime.uow, retention_days=runtime.settings.inbox_retention_days
            )
        except Exception:
            log.exception("purging the inbox failed; trying again later")
        try:
            await forget_finished_after_purge(runtime)
        except Exception:
            log.exception("forgetting jobs of purged rotations failed; trying again later")
        await asyncio.sleep(deps.settings.purge_interval_s)
