"""What a saga transition reads besides the saga, on the hot path: who subscribed to hear about
rotations (read once per transaction, however many transitions it carries), and which
rotations wait for one that ends. On asyncpg itself on PostgreSQL (see repository.py)."""

from __future__ import annotations

import json

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.db import asyncpg_connection
from orchestrator.adapters.webhook_tables import rotation_waits, subscriptions
from orchestrator.domain.subscriptions import Subscriber

_SUBSCRIBERS = select(
    subscriptions.c.id, subscriptions.c.event_types, subscriptions.c.site, subscriptions.c.change_id
)
_PG_SUBSCRIBERS = "SELECT id, event_types::text, site, change_id FROM subscriptions"
_WAITING = select(rotation_waits.c.rotation_id).where(
    rotation_waits.c.blocker_id == bindparam("_blocker")
)
_PG_WAITING = "SELECT rotation_id FROM rotation_waits WHERE blocker_id = $1"
# session.info key: this transaction's subscribers, once read.
_READ = "orchestrator.subscribers"


async def subscribers(session: AsyncSession) -> list[Subscriber]:
    """Every subscription, as this transaction first read them."""
    known: list[Subscriber] | None = session.info.get(_READ)
    if known is not None:
        return known
    driver = await asyncpg_connection(session)
    if driver is not None:
        rows = [(r[0], json.loads(r[1]), r[2], r[3]) for r in await driver.fetch(_PG_SUBSCRIBERS)]
    else:
        rows = [tuple(r) for r in await session.execute(_SUBSCRIBERS)]
    known = [Subscriber(i, frozenset(types), site, change) for i, types, site, change in rows]
    session.info[_READ] = known
    return known


async def waiting_for(session: AsyncSession, blocker_id: str) -> list[str]:
    """The rotations held until `blocker_id` ends (usually none)."""
    driver = await asyncpg_connection(session)
    if driver is not None:
        return [r[0] for r in await driver.fetch(_PG_WAITING, blocker_id)]
    return list((await session.execute(_WAITING, {"_blocker": blocker_id})).scalars())
