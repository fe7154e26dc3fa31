"""Callbacks to subscribers: queued in the transaction of the change they report, then sent by a
background loop, in order per rotation, retried with back-off for a day before giving up."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import aliased

from certrotate_shared.clock import Clock
from certrotate_shared.db import is_postgres
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.vault import Vault
from orchestrator.adapters import callback_sender, transition_reads
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.adapters.webhook_tables import callback_deliveries, subscriptions
from orchestrator.domain.state import TERMINAL
from orchestrator.domain.subscriptions import (
    Marks,
    callback_payload,
    events_between,
    marks_of,
    retry_at,
)
from orchestrator.service_layer.deps import Database
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

# A send that crashed mid-way is tried again after this (clock) time.
_LEASE = timedelta(minutes=2)


async def record_transition(uow: UnitOfWork, before: Marks | None, decision: Any) -> None:
    """Called for every saga transition, in its transaction: queue what subscribers asked to
    hear about, and start rotations that waited for this one to end. Costs no statement when
    nothing a subscriber hears about changed."""
    state = decision.state
    after = marks_of(state)
    if before is not None and before == after:
        return
    if after.status in TERMINAL and (before is None or before.status != after.status):
        from orchestrator.service_layer.supersession import release_waiting

        await release_waiting(uow, state)
    events = events_between(before, after)
    if not events:
        return
    rows = []
    for sub in await transition_reads.subscribers(uow.session):
        for event in events:
            if sub.wants(event, site=state.site, change_id=state.change_id):
                rows.append(
                    {
                        "event_id": f"evt_{uuid.uuid4().hex}",
                        "subscription_id": sub.subscription_id,
                        "event_type": event,
                        "rotation_id": state.saga_id,
                        "payload": callback_payload(event, state, state.updated_at),
                        "status": "pending",
                        "attempts": 0,
                        "created_at": to_db(state.updated_at),
                        "window_start": None,
                        "next_attempt_at": to_db(state.updated_at),
                    }
                )
    if rows:
        await uow.session.execute(insert(callback_deliveries), rows)


def _earlier_pending() -> Any:
    earlier = aliased(callback_deliveries)
    return (
        select(earlier.c.id)
        .where(
            earlier.c.subscription_id == callback_deliveries.c.subscription_id,
            earlier.c.rotation_id == callback_deliveries.c.rotation_id,
            earlier.c.status == "pending",
            earlier.c.id < callback_deliveries.c.id,
        )
        .exists()
    )


async def _claim(db: Database, settings: Settings, now: datetime) -> Any:
    """One due delivery with no earlier undelivered one of its rotation, leased to us."""
    async with db() as uow:
        query = (
            select(callback_deliveries)
            .where(
                callback_deliveries.c.status == "pending",
                callback_deliveries.c.next_attempt_at <= to_db(now),
                (callback_deliveries.c.leased_until.is_(None))
                | (callback_deliveries.c.leased_until < to_db(now)),
                ~_earlier_pending(),
            )
            .order_by(callback_deliveries.c.id)
            .limit(1)
        )
        if is_postgres(settings.database_url):
            query = query.with_for_update(skip_locked=True, of=callback_deliveries)
        row = (await uow.session.execute(query)).first()
        if row is None:
            return None
        await uow.session.execute(
            update(callback_deliveries)
            .where(callback_deliveries.c.id == row.id)
            .values(leased_until=to_db(now + _LEASE))
        )
        sub = (
            await uow.session.execute(
                select(subscriptions).where(subscriptions.c.id == row.subscription_id)
            )
        ).first()
        if sub is None:
            await _finish(uow, row.id, status="failed", now=now, error="subscription deleted")
            await uow.commit()
            return None
        await uow.commit()
        return row, sub


async def _finish(uow: UnitOfWork, delivery_id: int, *, status: str, now: datetime,
                  **values: Any) -> None:  # fmt: skip
    await uow.session.execute(
        update(callback_deliveries)
        .where(callback_deliveries.c.id == delivery_id)
        .values(status=status, leased_until=None, **values)
    )


def _allowed(settings: Settings) -> list[Any]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.callback_allowed_networks]


async def deliver_one(*, db: Database, clock: Clock, settings: Settings, vault: Vault) -> bool:
    """Send the next due callback; False when none is due."""
    now = clock.now()
    claimed = await _claim(db, settings, now)
    if claimed is None:
        return False
    row, sub = claimed
    secret = (await vault.get(sub.vault_ref))["secret"]
    result = await callback_sender.send(
        sub.url,
        secret=secret,
        event_id=row.event_id,
        body=json.dumps(row.payload, separators=(",", ":")),
        allowed=_allowed(settings),
        allow_http=settings.callback_allow_http,
        timeout=settings.callback_timeout_seconds,
        trust=callback_sender.trust_store(settings.callback_ca_file),
    )
    now = clock.now()
    attempts = row.attempts + 1
    common = {
        "attempts": attempts,
        "last_attempt_at": to_db(now),
        "last_status_code": result.status_code,
        "last_error": result.error,
        "response_prefix": result.response_prefix,
    }
    async with db() as uow:
        if result.delivered:
            await _finish(uow, row.id, status="delivered", now=now, delivered_at=to_db(now),
                          **common)  # fmt: skip
        else:
            # The retry window starts at the first attempt (a redelivery starts a new one).
            first = from_db(row.window_start) if row.window_start else now
            again = retry_at(
                attempts=attempts, now=now, first_at=first,
                base=settings.callback_retry_base_seconds,
                cap=settings.callback_retry_max_seconds,
                window=settings.callback_retry_window_hours * 3600,
            )  # fmt: skip
            window = {"window_start": to_db(first)}
            if again is None:
                await _finish(uow, row.id, status="failed", now=now, **window, **common)
            else:
                await _finish(uow, row.id, status="pending", now=now, **window,
                              next_attempt_at=to_db(again), **common)  # fmt: skip
        await uow.commit()
    return True


async def run_callbacks(*, db: Database, clock: Clock, settings: Settings, vault: Vault) -> None:
    """The delivery loop: sends while there is something due, else looks again after a poll."""
    poll = settings.callback_poll_seconds
    while True:
        try:
            sent = await deliver_one(db=db, clock=clock, settings=settings, vault=vault)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("callback delivery failed; trying again")
            sent = False
        if not sent:
            await asyncio.sleep(poll)
