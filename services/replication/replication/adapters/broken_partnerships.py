"""The record of the partnerships each saga broke, on the caller's session (its transaction).

A partnership is marked "deleting" before the host operation runs, so a crash cannot forget a
deletion it made, and a pass after a crash can tell a partnership it deleted from one that was
never there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.utc_timestamps import as_utc
from replication.adapters.orm import broken_partnerships


async def partners_broken_by(session: AsyncSession, *, saga_id: str, site: str) -> set[str]:
    """The partnerships of this site that this saga set out to delete (or deleted)."""
    rows = await session.execute(
        select(broken_partnerships.c.partner).where(
            broken_partnerships.c.saga_id == saga_id,
            broken_partnerships.c.site == site,
            broken_partnerships.c.state.in_(("deleting", "broken")),
        )
    )
    return {r.partner for r in rows}


async def mark_partnership(
    session: AsyncSession,
    *,
    saga_id: str,
    site: str,
    partner: str,
    state: str,
    op_key: str,
    now: datetime,
) -> None:
    """Record where a partnership this saga breaks stands: deleting, broken or restored."""
    key = and_(
        broken_partnerships.c.saga_id == saga_id,
        broken_partnerships.c.site == site,
        broken_partnerships.c.partner == partner,
    )
    stamps: dict[str, Any] = {}
    if state == "broken":
        stamps["broken_at"] = now
    elif state == "restored":
        stamps["restored_at"] = now
    existing = (await session.execute(select(broken_partnerships.c.state).where(key))).first()
    if existing is None:
        if state == "restored":
            return  # we never broke it; nothing of ours to mark
        await session.execute(
            insert(broken_partnerships).values(
                saga_id=saga_id, site=site, partner=partner, state=state, op_key=op_key, **stamps
            )
        )
    else:
        await session.execute(update(broken_partnerships).where(key).values(state=state, **stamps))


async def forget_partnership(
    session: AsyncSession, *, saga_id: str, site: str, partner: str
) -> None:
    """The deletion we set out to do did not happen: the partnership is not ours to restore."""
    await session.execute(
        delete(broken_partnerships).where(
            broken_partnerships.c.saga_id == saga_id,
            broken_partnerships.c.site == site,
            broken_partnerships.c.partner == partner,
            broken_partnerships.c.state == "deleting",
        )
    )


async def broken_partnerships_of(
    session: AsyncSession, *, saga_id: str | None = None, site: str | None = None
) -> list[dict[str, Any]]:
    query = select(broken_partnerships).order_by(
        broken_partnerships.c.saga_id, broken_partnerships.c.site, broken_partnerships.c.partner
    )
    if saga_id is not None:
        query = query.where(broken_partnerships.c.saga_id == saga_id)
    if site is not None:
        query = query.where(broken_partnerships.c.site == site)
    return [
        {
            "saga_id": r.saga_id,
            "site": r.site,
            "partner": r.partner,
            "state": r.state,
            "broken_at": as_utc(r.broken_at),
            "restored_at": as_utc(r.restored_at),
        }
        for r in await session.execute(query)
    ]
