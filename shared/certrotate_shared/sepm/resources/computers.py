"""The clients: GET /computers paged (filtered by lastUpdate) and the online counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from certrotate_shared.sepm import answers
from certrotate_shared.sepm.api import PageReader, PageT
from certrotate_shared.sepm.paging import paged, pages
from certrotate_shared.sepm.session import SepmSession


class ComputerCalls:
    _session: SepmSession

    async def iter_computer_pages(
        self, *, last_update_ms: int = 0, page_size: int = 1000, domain_id: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """GET /computers page by page from pageIndex 1 until lastPage, filtered by lastUpdate."""
        params: dict[str, Any] = {"lastUpdate": last_update_ms}
        if domain_id:
            params["domain"] = domain_id
        async for page in pages(self._session, "/computers", params, page_size, key="uniqueId"):
            if domain_id:
                answers.check_domain(page, domain_id, "GET /computers", _computer_domain)
            yield page

    async def iter_computer_page_bodies(
        self,
        read: PageReader[PageT],
        *,
        last_update_ms: int = 0,
        page_size: int = 1000,
        domain_id: str | None = None,
    ) -> AsyncIterator[PageT]:
        """GET /computers page by page until lastPage, each body decoded by `read` only: a watch
        of a million clients reads six fields of each and skips SEPM's other hundred."""
        params: dict[str, Any] = {"lastUpdate": last_update_ms}
        if domain_id:
            params["domain"] = domain_id
        async for page in paged(
            self._session,
            "/computers",
            params,
            page_size,
            lambda response, where: read(response.content, where),
        ):
            yield page

    async def online_status(self) -> dict[str, Any]:
        """GET /stats/client/onlinestatus."""
        body, where = await self._session.get_json("/stats/client/onlinestatus")
        status = answers.expect_object(body, where)
        answers.nested_objects(status, ("clientCountStatsList",), where)
        return status


def _computer_domain(computer: dict[str, Any]) -> Any:
    group = computer.get("group")
    return group.get("domain") if isinstance(group, dict) else None
