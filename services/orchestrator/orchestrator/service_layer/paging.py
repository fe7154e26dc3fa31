"""A page of a listing, or the refusal of a cursor this listing did not give."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.paging import InvalidCursorError, Key, keyset_page
from orchestrator.service_layer.errors import InputRejectedError


async def page(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[Key],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    try:
        return await keyset_page(session, query, keys, cursor=cursor, limit=limit)
    except InvalidCursorError as exc:
        raise InputRejectedError(str(exc), code="invalid_cursor") from None
