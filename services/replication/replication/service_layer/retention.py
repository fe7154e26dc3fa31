"""The replication service's records of a rotation, purged after its retention.

Kept on purpose: a partnership the rotation broke and never restored (the only record of what
certrotate deleted, for whoever re-adds it by hand), and everything of a rotation that still
has an operation in progress (it is asked again later).
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.record_retention import Purged
from replication.adapters.orm import broken_partnerships, operations, operator_tasks, partner_steps


async def purge_rotation(session: AsyncSession, saga_id: str) -> Purged | None:
    """Delete the rotation's operations, steps, tasks and restored partnerships."""
    active = await session.execute(
        select(exists().where(operations.c.saga_id == saga_id, operations.c.status != "done"))
    )
    if active.scalar():
        return None
    ops = select(operations.c.op_key).where(operations.c.saga_id == saga_id)
    counts = {}
    for table in (partner_steps, operator_tasks):
        done = await session.execute(delete(table).where(table.c.op_key.in_(ops)))
        counts[table.name] = done.rowcount  # type: ignore[attr-defined]
    restored = broken_partnerships.c.state == "restored"
    done = await session.execute(
        delete(broken_partnerships).where(broken_partnerships.c.saga_id == saga_id, restored)
    )
    counts[broken_partnerships.name] = done.rowcount  # type: ignore[attr-defined]
    done = await session.execute(delete(operations).where(operations.c.saga_id == saga_id))
    counts[operations.name] = done.rowcount  # type: ignore[attr-defined]
    still_broken = (
        await session.execute(
            select(broken_partnerships.c.site, broken_partnerships.c.partner).where(
                broken_partnerships.c.saga_id == saga_id
            )
        )
    ).all()
    kept = ""
    if still_broken:
        pairs = ", ".join(f"{r.site} -> {r.partner}" for r in still_broken)
        kept = f"partnerships this rotation broke and never restored, kept on record: {pairs}"
    return Purged(counts, kept)
