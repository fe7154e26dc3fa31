"""The client-monitor's records of a rotation, purged after its retention.

Its watches and the clients still pending when each closed go. The at-risk lists an approver
accepted stay: the rotation's history names each (id, count, sha256) as the evidence of the
risk that was accepted, and an auditor expects to open that evidence for as long as the
decision's record exists (certrotate keeps rotation records; it never purges their history).
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.record_retention import Purged
from client_monitor.adapters.orm import accepted_lists, pending_clients, watches

KEPT = (
    "accepted at-risk lists kept as long as the rotation's record (the evidence its history "
    "names): {lists}"
)


async def purge_rotation(session: AsyncSession, saga_id: str) -> Purged | None:
    """Delete the rotation's closed watches and their pending clients."""
    open_watch = exists().where(watches.c.saga_id == saga_id, watches.c.status == "open")
    if (await session.execute(select(open_watch))).scalar():
        return None
    ids = select(watches.c.watch_id).where(watches.c.saga_id == saga_id)
    lists = list(
        (
            await session.execute(
                select(accepted_lists.c.list_id)
                .where(accepted_lists.c.watch_id.in_(ids))
                .order_by(accepted_lists.c.list_id)
            )
        ).scalars()
    )
    done = await session.execute(delete(pending_clients).where(pending_clients.c.watch_id.in_(ids)))
    counts = {pending_clients.name: done.rowcount}  # type: ignore[attr-defined]
    done = await session.execute(delete(watches).where(watches.c.saga_id == saga_id))
    counts[watches.name] = done.rowcount  # type: ignore[attr-defined]
    return Purged(counts, KEPT.format(lists=", ".join(lists)) if lists else "")
