"""The one way a service reaches a site's SEPM: a connector built once in bootstrap, called
with the site a command names. Tests and benchmarks inject any callable of the same type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm.api import SepmApi

if TYPE_CHECKING:
    from certrotate_shared.settings import ServiceSettings
    from certrotate_shared.vault import Vault

# (the site a command names) -> a logged-out client of the site as the orchestrator published it.
SepmConnector = Callable[[SiteTarget], Awaitable[SepmApi]]


def sepm_connector(settings: ServiceSettings, vault: Vault, **options: Any) -> SepmConnector:
    """The httpx connector with this service's timeouts and the site's account from the vault;
    `options` go to each SepmClient as they are (a service's own transport_factory)."""
    connect_timeout = settings.sepm_connect_timeout_s
    read_timeout = settings.sepm_read_timeout_s

    async def connect(site: SiteTarget) -> SepmApi:
        # Imported on use: httpx stays out of services and tests that never reach SEPM.
        from certrotate_shared.sepm.client import connect_site

        client: SepmApi = await connect_site(
            site, vault, connect_timeout=connect_timeout, read_timeout=read_timeout, **options
        )
        return client

    return connect
