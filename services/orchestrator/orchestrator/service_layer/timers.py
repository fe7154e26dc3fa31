"""Durable timers: due rows wake their saga; a restart loses none because they live in the DB."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import cast

from sqlalchemy import delete

from certrotate_shared.clock import Clock
from certrotate_shared.db import is_postgres
from certrotate_shared.logs import log_context
from orchestrator.adapters.orm import timers
from orchestrator.adapters.repository import ConcurrentUpdateError, SagaRepository
from orchestrator.domain.inputs import TimerFired, TimerKind
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.transitions import advance
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


async def _fire_due_timers(
    db: Database, clock: Clock, settings: Settings
) -> tuple[int, datetime | None]:
    """(sagas woken, the next due time after them), the latter read in the last transaction."""
    postgres = is_postgres(settings.database_url)
    fired = 0
    while True:
        now = clock.now()
        async with db() as uow:
            repo = SagaRepository(uow.session)
            saga_id = await repo.claim_due_timer(now, postgres=postgres)
            if saga_id is None:
                return fired, await repo.next_due()
            loaded = await repo.get(saga_id)
            due = _due_timers(loaded[0].timers if loaded else {}, now)
            if not due:
                # A row the saga no longer wants (or a saga that is gone): drop it.
                if loaded is None:
                    await uow.session.execute(delete(timers).where(timers.c.saga_id == saga_id))
                else:
                    await repo.sync_timers(loaded[0])
                await uow.commit()
                continue
            kind, due_at = due[0]
            with log_context(rotation_id=saga_id):
                # The saga's timers are keyed by the kinds it sets (saga.py); JSON keeps them str.
                timer = TimerFired(cast(TimerKind, kind), due_at)
                await advance(uow, saga_id, timer, now, loaded=loaded)
                await uow.commit()
            fired += 1


def _due_timers(pending: dict[str, datetime], now: datetime) -> list[tuple[str, datetime]]:
    return sorted(((k, d) for k, d in pending.items() if d <= now), key=lambda kd: kd[1])


async def run_timers(*, db: Database, clock: Clock, settings: Settings, alarm: TimerAlarm) -> None:
    """Wake at the next due time (in the clock's time, maybe accelerated) or within a poll."""
    speed = float(getattr(clock, "speed", 1.0))
    poll = settings.timer_poll_seconds
    while True:
        try:
            _, next_due = await _fire_due_timers(db, clock, settings)
        except asyncio.CancelledError:
            raise
        except ConcurrentUpdateError:
            continue  # an event moved the saga at the same moment: re-read and try again
        except Exception:
            log.exception("timer loop failed; retrying")
            next_due = None
        wait = poll
        if next_due is not None:
            wait = min(poll, max(0.0, (next_due - clock.now()).total_seconds() / speed))
        alarm.rung.clear()
        # Transitions wake the loop only for a timer due before this (or when none is known).
        alarm.wake_at = next_due
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(alarm.rung.wait(), wait)
