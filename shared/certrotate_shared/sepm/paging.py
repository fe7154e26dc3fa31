"""SEPM's page objects walked from pageIndex 1 until `lastPage` (SEPM's REST definition)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from certrotate_shared.sepm import answers
from certrotate_shared.sepm.api import PageT
from certrotate_shared.sepm.session import SepmSession, decode_json


def pages(
    session: SepmSession,
    path: str,
    params: dict[str, Any],
    page_size: int,
    *,
    key: str | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every page's `content`, each item an object (with a string `key`, when named)."""

    def read(response: httpx.Response, where: str) -> tuple[list[dict[str, Any]], bool]:
        return answers.page(decode_json(response, where), where, key=key)

    return paged(session, path, params, page_size, read)


async def paged(
    session: SepmSession,
    path: str,
    params: dict[str, Any],
    page_size: int,
    read: Callable[[httpx.Response, str], tuple[PageT, bool]],
) -> AsyncIterator[PageT]:
    """Every page as `read` decodes it (its content, and whether it is the last)."""
    index, where = 1, f"GET {path}"
    while True:
        query = {**params, "pageIndex": index, "pageSize": page_size}
        content, last = read(await session.call("GET", path, params=query), where)
        yield content
        # An empty page ends the scan too, so a server that never says lastPage cannot
        # keep us paging forever.
        if last or not content:
            return
        index += 1
