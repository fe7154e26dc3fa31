"""Site locks: the rows that let one active rotation hold a site (and its replication farm).

The primary key on the site does the work: two creating transactions that want the same site
cannot both commit, whatever replica they run in (PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.db import asyncpg_connection
from orchestrator.adapters.orm import site_locks
from orchestrator.adapters.repository import to_db

# Every rotation's last transition frees its sites: on asyncpg itself (see repository.py).
_PG_RELEASE = "DELETE FROM site_locks WHERE saga_id = $1"


async def acquire(
    session: AsyncSession, sites: Collection[str], saga_id: str, now: datetime
) -> None:
    """Hold `sites` for the saga; raises IntegrityError (at flush or commit) if one is held."""
    await session.execute(
        insert(site_locks),
        [{"site": site, "saga_id": saga_id, "acquired_at": to_db(now)} for site in sorted(sites)],
    )


async def holders(session: AsyncSession, sites: Collection[str]) -> dict[str, str]:
    """site -> the saga holding it, for those of `sites` that are held."""
    rows = await session.execute(
        select(site_locks.c.site, site_locks.c.saga_id).where(site_locks.c.site.in_(list(sites)))
    )
    return {row.site: row.saga_id for row in rows}


async def release(session: AsyncSession, saga_id: str) -> bool:
    """Free every site the saga holds; False if it held none (it ended before)."""
    driver = await asyncpg_connection(session)
    if driver is not None:
        return str(await driver.execute(_PG_RELEASE, saga_id)) != "DELETE 0"
    result = await session.execute(delete(site_locks).where(site_locks.c.saga_id == saga_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
