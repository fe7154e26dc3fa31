"""How the service reaches a site: its SEPM API (kept open per site) and its host operations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from certrotate_shared.hostops.base import HostOperations
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm.api import SepmApi, SepmError
from certrotate_shared.sepm.connector import SepmConnector

HostOpsFactory = Callable[[SiteTarget], Awaitable[HostOperations]]


class Connections:
    """One SEPM session per site (logins are rate-limited and slow), host operations per use."""

    def __init__(self, sepm_factory: SepmConnector, hostops_factory: HostOpsFactory) -> None:
        self._sepm_factory = sepm_factory
        self._hostops_factory = hostops_factory
        self._sepm: dict[tuple[str, ...], SepmApi] = {}

    @contextlib.asynccontextmanager
    async def sepm(self, site: SiteTarget) -> AsyncIterator[SepmApi]:
        """The site's SEPM API; a session that failed is dropped so the next use starts afresh
        (the account or the trusted certificates may have changed in between)."""
        # The factory connects to the published site (never the message's fields); a session
        # is kept per publication the command was built from, so a newer one starts afresh.
        key = (site.site, str(site.revision), site.api_url, *site.trusted_certificates_pem)
        client = self._sepm.get(key)
        if client is None:
            client = await self._sepm_factory(site)
            self._sepm[key] = client
        try:
            yield client
        except SepmError:
            if self._sepm.pop(key, None) is not None:
                with contextlib.suppress(Exception):
                    await client.close()
            raise

    @contextlib.asynccontextmanager
    async def host_operations(self, site: SiteTarget) -> AsyncIterator[HostOperations]:
        ops = await self._hostops_factory(site)
        try:
            yield ops
        finally:
            await ops.close()

    async def close(self) -> None:
        clients, self._sepm = list(self._sepm.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
