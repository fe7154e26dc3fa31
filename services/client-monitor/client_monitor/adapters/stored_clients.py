"""The client lists kept in the database: the pending list a watch saves when it closes, and
the accepted lists frozen from a watch's list, read back a page at a time in uniqueId order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from client_monitor.adapters.orm import accepted_list_clients, accepted_lists, pending_clients


async def save_pending_clients(
    session: AsyncSession, watch_id: str, rows: Iterable[dict[str, Any]], *, chunk: int = 5000
) -> None:
    batch: list[dict[str, Any]] = []
    for position, row in enumerate(rows):
        batch.append({"watch_id": watch_id, "position": position, **row})
        if len(batch) >= chunk:
            await session.execute(insert(pending_clients), batch)
            batch = []
    if batch:
        await session.execute(insert(pending_clients), batch)


def _pending_query(watch_id: str, status: str) -> Select[Any]:
    query = select(pending_clients).where(pending_clients.c.watch_id == watch_id)
    if status == "stale":
        query = query.where(pending_clients.c.stale.is_(True))
    elif status == "straggler":
        query = query.where(pending_clients.c.stale.is_(False))
    return query


def _accepted_query(list_id: str) -> Select[Any]:
    return select(accepted_list_clients).where(accepted_list_clients.c.list_id == list_id)


async def _page(
    engine: AsyncEngine, query: Select[Any], unique_id: Any, *, after: str | None, limit: int | None
) -> tuple[AsyncIterator[dict[str, Any]], str | None]:
    """Rows of `query` in uniqueId order after `after`, at most `limit`, and the uniqueId the
    next page starts after (looked up first, so a streamed answer can name it up front)."""
    if after is not None:
        query = query.where(unique_id > after)
    next_after = None
    if limit is not None:
        probe = query.with_only_columns(unique_id).order_by(unique_id).offset(limit - 1).limit(2)
        async with engine.connect() as conn:
            ids = (await conn.execute(probe)).scalars().all()
        next_after = ids[0] if len(ids) == 2 else None
        query = query.limit(limit)
    return _stream(engine, query.order_by(unique_id)), next_after


async def _stream(engine: AsyncEngine, query: Select[Any]) -> AsyncIterator[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=2000))
        async for row in result:
            yield dict(row._mapping)


async def pending_clients_page(
    engine: AsyncEngine, watch_id: str, *, status: str, after: str | None, limit: int | None
) -> tuple[AsyncIterator[dict[str, Any]], str | None]:
    """The clients saved when the watch closed, filtered like the live lists."""
    query = _pending_query(watch_id, status)
    return await _page(engine, query, pending_clients.c.unique_id, after=after, limit=limit)


async def accepted_clients_page(
    engine: AsyncEngine, list_id: str, *, after: str | None, limit: int | None
) -> tuple[AsyncIterator[dict[str, Any]], str | None]:
    """The clients of an accepted list, exactly as frozen."""
    query = _accepted_query(list_id)
    return await _page(engine, query, accepted_list_clients.c.unique_id, after=after, limit=limit)


async def stream_pending_clients(
    engine: AsyncEngine, watch_id: str, *, status: str
) -> AsyncIterator[dict[str, Any]]:
    """Every saved client in that status, in uniqueId order."""
    query = _pending_query(watch_id, status).order_by(pending_clients.c.unique_id)
    async for row in _stream(engine, query):
        yield row


@dataclass(frozen=True)
class AcceptedList:
    list_id: str
    watch_id: str
    status: str
    count: int
    sha256: str
    created_at: datetime


async def add_accepted_clients(
    session: AsyncSession, list_id: str, rows: list[dict[str, Any]]
) -> None:
    if rows:
        await session.execute(
            insert(accepted_list_clients), [{"list_id": list_id, **r} for r in rows]
        )


async def copy_pending_to_accepted(
    session: AsyncSession, watch_id: str, *, status: str, list_id: str
) -> None:
    """Freeze a closed watch's saved list inside the database (no rows through Python)."""
    columns = [c.name for c in accepted_list_clients.c if c.name != "list_id"]
    source = _pending_query(watch_id, status).with_only_columns(
        literal(list_id).label("list_id"), *(pending_clients.c[name] for name in columns)
    )
    await session.execute(insert(accepted_list_clients).from_select(["list_id", *columns], source))


async def add_accepted_list(session: AsyncSession, accepted: AcceptedList) -> None:
    await session.execute(
        insert(accepted_lists).values(
            list_id=accepted.list_id,
            watch_id=accepted.watch_id,
            status=accepted.status,
            client_count=accepted.count,
            sha256=accepted.sha256,
            created_at=accepted.created_at,
        )
    )


async def get_accepted_list(engine: AsyncEngine, list_id: str) -> AcceptedList | None:
    query = select(accepted_lists).where(accepted_lists.c.list_id == list_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return AcceptedList(
        list_id=row.list_id,
        watch_id=row.watch_id,
        status=row.status,
        count=row.client_count,
        sha256=row.sha256,
        created_at=row.created_at,
    )
