"""What the services need from one SEPM site. The httpx connector implements it for real
servers and the twin; unit tests use fakes. Field names are SEPM's own REST definition's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sized
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

PageT = TypeVar("PageT", bound=Sized)
# Reads one page's undecoded body (and the call's name, for errors): the page, and lastPage.
PageReader = Callable[[bytes, str], tuple[PageT, bool]]


class SepmError(Exception):
    """SEPM answered with an error, or could not be reached.

    `retryable` is False for answers that will not change by asking again (400, 404, 403).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class SepmAuthError(SepmError):
    """The account was refused (wrong credentials, not a system administrator)."""


class SepmMalformedAnswerError(SepmError):
    """SEPM answered 200 with a body of the wrong shape (a type the connector cannot read).

    Never retryable: the same server answers the same way again, and retrying would hide a
    version difference that a person has to look at.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, status=None, retryable=False)


@dataclass(frozen=True)
class SepmLocation:
    """One location of a group; `name` is None when SEPM listed ids only."""

    id: str
    name: str | None = None


@dataclass(frozen=True)
class SepmDomain:
    """One SEPM domain (GET /domains): its groups, locations and clients are its own."""

    id: str
    name: str
    enabled: bool = True


class SepmApi(Protocol):
    async def version(self) -> dict[str, Any]:
        """GET /version: API_SEQUENCE, API_VERSION, version."""
        ...

    async def domains(self) -> list[SepmDomain]:
        """GET /domains: every domain the account can see."""
        ...

    def iter_groups(
        self, *, domain_id: str | None = None, page_size: int = 25
    ) -> AsyncIterator[dict[str, Any]]:
        """Every group of a domain (GET /groups?domain=, paged; None: the login domain)."""
        ...

    async def group_locations(
        self, group_id: str, *, domain_id: str | None = None
    ) -> list[SepmLocation]:
        """GET /groups/{id}/locations?hasName=true: the group's (or owning parent's) locations."""
        ...

    async def get_location_settings(self, group_id: str, location_id: str) -> dict[str, Any]:
        """GET /groups/{g}/locations/{l}/settings."""
        ...

    async def patch_location_settings(
        self, group_id: str, location_id: str, body: dict[str, Any]
    ) -> None:
        """PATCH /groups/{g}/locations/{l}/settings."""
        ...

    def iter_computer_pages(
        self, *, last_update_ms: int = 0, page_size: int = 1000, domain_id: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """GET /computers of a domain page by page until lastPage, filtered by lastUpdate."""
        ...

    def iter_computer_page_bodies(
        self,
        read: PageReader[PageT],
        *,
        last_update_ms: int = 0,
        page_size: int = 1000,
        domain_id: str | None = None,
    ) -> AsyncIterator[PageT]:
        """GET /computers like iter_computer_pages, each body handed undecoded to `read`, which
        decodes what its caller needs and checks it (the domain too)."""
        ...

    async def online_status(self) -> dict[str, Any]:
        """GET /stats/client/onlinestatus."""
        ...

    async def is_replicated(self) -> bool:
        """GET /replication/is_replicated."""
        ...

    async def replication_status(self) -> dict[str, Any]:
        """GET /replication/status: {replicationStatus: {..., replicationPartnerStatusList}}."""
        ...

    async def replicate_now(self, partner_site_name: str) -> int:
        """POST /replication/replicatenow (content=false, logs=false); returns `code`."""
        ...

    async def close(self) -> None:
        """Log out and release connections."""
        ...
