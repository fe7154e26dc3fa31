"""The Idempotency-Keys of POST requests that started a rotation (the API's, a campaign's), as
the retention job forgets them: only once their rotation has ended, and long enough ago that
no client still retries the request (`idempotency_key_days`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select

from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters.orm import idempotency_keys, sagas
from orchestrator.domain.state import TERMINAL

# Rows per DELETE, each in its own short transaction: a first run over years of keys never
# holds a long lock against the API inserting new ones.
BATCH = 2000


async def purge_expired(
    db: Callable[[], UnitOfWork], *, ended_before: datetime, batch: int = BATCH
) -> int:
    """Forget the keys of rotations that ended before `ended_before`; how many. A live
    rotation's key stays however old: a retry must get that rotation, not site_busy."""
    expired = (
        select(idempotency_keys.c.key)
        .join(sagas, sagas.c.saga_id == idempotency_keys.c.saga_id)
        .where(sagas.c.status.in_(TERMINAL), sagas.c.updated_at < ended_before)
        .limit(batch)
    )
    deleted = 0
    while True:
        async with db() as uow:
            done = await uow.session.execute(
                delete(idempotency_keys).where(idempotency_keys.c.key.in_(expired))
            )
            await uow.commit()
        rows: int = done.rowcount  # type: ignore[attr-defined]
        deleted += rows
        if rows < batch:
            return deleted
        await asyncio.sleep(0)  # let the API's transactions through between batches
