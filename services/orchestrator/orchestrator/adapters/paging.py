"""Keyset pages of a listing: ordered by a unique key, resumed after the last row a page showed.

A cursor is the last row's key, opaque to clients; rows added or removed between two pages do not
shift the others (unlike an offset)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.repository import decode_cursor, encode_cursor, from_db, to_db


class InvalidCursorError(ValueError):
    """A cursor this listing did not give (or of another listing)."""


def _same(value: str) -> Any:
    return value


@dataclass(frozen=True)
class Key:
    """A column of the order, and how its value travels in a cursor."""

    column: Any
    dump: Callable[[Any], str] = str
    load: Callable[[str], Any] = _same


def moment(column: Any) -> Key:
    return Key(column, lambda v: from_db(v).isoformat(), lambda s: to_db(datetime.fromisoformat(s)))


async def keyset_page(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[Key],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Up to `limit` rows after `cursor`, and the cursor of the next page (None: the last one).
    Raises InvalidCursorError for a cursor this listing did not give."""
    columns = [k.column for k in keys]
    if cursor is not None:
        try:
            parts = decode_cursor(cursor)
            if len(parts) != len(keys):
                raise ValueError("another listing's cursor")
            values = [k.load(p) for k, p in zip(keys, parts, strict=True)]
        except (ValueError, TypeError):
            raise InvalidCursorError("invalid cursor") from None
        query = query.where(tuple_(*columns) > tuple_(*values))
    rows = list((await session.execute(query.order_by(*columns).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(*(k.dump(getattr(last, k.column.name)) for k in keys))
