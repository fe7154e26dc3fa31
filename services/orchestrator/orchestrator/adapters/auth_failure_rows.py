"""Failed bearer-token authentications as rows of the database every replica shares, so that
the limit holds across replicas (service_layer/auth_failures.py says how it is enforced).

A row is a client address and the instant (epoch seconds) a token from it failed. Each failure
deletes what has left the window, and the oldest rows beyond MAX_FAILURES (a hundred at most,
each adding one): the table holds about one window's failures, and about MAX_FAILURES of them
at most under a flood from many addresses.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, String, delete, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import Table, _id_type

# Rows kept at most: under a flood from many addresses the oldest failures are forgotten first
# (as the in-memory count forgets the oldest addresses, auth_failures.MAX_ADDRESSES).
MAX_FAILURES = 100_000

auth_failures = Table(
    "auth_failures",
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("address", String(100), nullable=False),
    Column("failed_at", Float, nullable=False),
)
Index("ix_auth_failures_address", auth_failures.c.address, auth_failures.c.failed_at)
Index("ix_auth_failures_failed_at", auth_failures.c.failed_at)

# Old rows a failure deletes at most: each adds one, so the table drains, and no request pays
# for a whole window's flood at once.
_SWEEP = 100

# One round trip on PostgreSQL. Every part of the statement sees the table as it was before it,
# so the SELECT reads the address's earlier failures (the new one is added by the caller) and
# may still see a row deleted by the same statement beyond MAX_FAILURES. Rows another replica
# is deleting at the same moment are skipped, not waited for (nor deadlocked on).
_PG_RECORD = text(
    """
    WITH added AS (
        INSERT INTO auth_failures (address, failed_at) VALUES (:address, :at) RETURNING id
    ), gone AS (
        DELETE FROM auth_failures WHERE id IN (
            SELECT id FROM auth_failures
            WHERE failed_at <= :since OR id <= (SELECT id FROM added) - :keep
            LIMIT :sweep FOR UPDATE SKIP LOCKED
        )
    )
    SELECT failed_at FROM auth_failures
    WHERE address = :address AND failed_at > :since
    ORDER BY failed_at DESC LIMIT :newest
    """
)


async def record_failure(
    session: AsyncSession, address: str, at: float, *, window: float, newest: int
) -> list[float]:
    """Record that a token from `address` failed at `at`; the instants of the address's
    failures within `window` before it, newest first, at most `newest` of them. Commits by
    itself: the session is one without a transaction (the refused request rolls nothing)."""
    since = at - window
    address = address[:100]  # the column's width; a longer one is no address a socket gives
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(
            _PG_RECORD,
            {"address": address, "at": at, "since": since, "keep": MAX_FAILURES, "sweep": _SWEEP,
             "newest": newest},
        )  # fmt: skip
        return [float(row[0]) for row in rows]
    # SQLite (the embedded mode: one process, so a few statements cost no one else a thing).
    earlier = await session.execute(
        select(auth_failures.c.failed_at)
        .where(auth_failures.c.address == address, auth_failures.c.failed_at > since)
        .order_by(auth_failures.c.failed_at.desc())
        .limit(newest)
    )
    instants = [float(row[0]) for row in earlier]
    added = await session.execute(
        insert(auth_failures).values(address=address, failed_at=at).returning(auth_failures.c.id)
    )
    await session.execute(
        delete(auth_failures).where(
            or_(
                auth_failures.c.failed_at <= since,
                auth_failures.c.id <= added.scalar_one() - MAX_FAILURES,
            )
        )
    )
    return instants
