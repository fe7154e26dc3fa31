"""The SEPM calls of every watch of one site, in this replica, spaced to the site's budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from certrotate_shared.sepm.api import PageReader, PageT, SepmApi, SepmDomain
from client_monitor.domain.budget import CallBudget

T = TypeVar("T")


class PacedSepm:
    """A SEPM session whose reads wait for the budget's token first. Pages are fetched one
    at a time, so a page is asked for only when its token is there."""

    def __init__(self, inner: SepmApi, budget: CallBudget) -> None:
        self.inner = inner
        self.budget = budget

    async def _token(self) -> None:
        delay = self.budget.wait(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    async def domains(self) -> list[SepmDomain]:
        await self._token()
        return await self.inner.domains()

    def iter_computer_pages(self, **options: Any) -> AsyncIterator[list[dict[str, Any]]]:
        return self._paced(self.inner.iter_computer_pages(**options))

    def iter_computer_page_bodies(
        self, read: PageReader[PageT], **options: Any
    ) -> AsyncIterator[PageT]:
        return self._paced(self.inner.iter_computer_page_bodies(read, **options))

    async def _paced(self, pages: AsyncIterator[T]) -> AsyncIterator[T]:
        await self._token()
        async for page in pages:
            yield page
            await self._token()  # for the next page (one spare token after the last: cheap)

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:  # calls a watch does not make go as they are
        return getattr(self.inner, name)
