"""The httpx connector to SEPM's REST API: tokens, paging, 429 back-off, timeouts, and retries
of idempotent calls only (`session.py` says what is retried and why). Implements `SepmApi`
for real servers and for the twin, one module per SEPM resource (`resources/`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from certrotate_shared import site_directory
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm.api import SepmAuthError, SepmError
from certrotate_shared.sepm.resources.computers import ComputerCalls
from certrotate_shared.sepm.resources.groups import GroupCalls
from certrotate_shared.sepm.resources.replication import ReplicationCalls
from certrotate_shared.sepm.resources.site import SiteCalls
from certrotate_shared.sepm.retry import RetryPolicy, Sleep
from certrotate_shared.sepm.session import SepmCredentials, SepmSession, TransportFactory
from certrotate_shared.vault import SecretNotFoundError, Vault

__all__ = ["RetryPolicy", "SepmClient", "SepmCredentials", "connect_site"]


class SepmClient(SiteCalls, GroupCalls, ComputerCalls, ReplicationCalls):
    """One SEPM site's REST API over httpx.AsyncClient; logs in lazily."""

    def __init__(
        self,
        api_url: str,
        credentials: SepmCredentials,
        *,
        trusted_certificates_pem: list[str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        token_refresh_margin_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        site: str = "",
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._session = SepmSession(
            api_url,
            credentials,
            trusted_certificates_pem=list(trusted_certificates_pem or []),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry or RetryPolicy(),
            token_refresh_margin_s=token_refresh_margin_s,
            transport=transport,
            sleep=sleep,
            monotonic=monotonic,
            site=site,
            transport_factory=transport_factory,
        )

    @property
    def logins(self) -> int:
        """How many times this client logged in (observability, tests)."""
        return self._session.logins

    async def close(self) -> None:
        """Log out (best effort) and release connections."""
        await self._session.close()

    async def __aenter__(self) -> SepmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect_site(site: SiteTarget, vault: Vault, **options: Any) -> SepmClient:
    """A connector for the site a command names, as the orchestrator published it (address,
    trust set, account reference: never the command's own), with its account from the vault
    (it logs in on first use)."""
    try:
        site = await site_directory.resolve(site, vault)
    except site_directory.StaleSiteTargetError as exc:
        raise SepmError(str(exc), retryable=True) from None
    except site_directory.UnknownSiteTargetError as exc:
        raise SepmError(str(exc), retryable=False) from None
    try:
        secret = await vault.get(site.credential_ref)
    except SecretNotFoundError:
        raise SepmAuthError(
            f"no SEPM API account is stored under {site.credential_ref!r} for site {site.site}",
            retryable=False,
        ) from None
    credentials = SepmCredentials(
        username=str(secret.get("username", "")),
        password=str(secret.get("password", "")),
        domain=str(secret.get("domain") or ""),
    )
    return SepmClient(
        site.api_url,
        credentials,
        trusted_certificates_pem=list(site.trusted_certificates_pem),
        site=site.site,
        **options,
    )
