"""Walking every domain of a site: SEPM answers /groups and /computers for one domain at a time
(the login domain when none is named), so anything site-wide asks each domain in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from certrotate_shared.sepm.answers import malformed
from certrotate_shared.sepm.api import SepmApi, SepmDomain
from certrotate_shared.sepm.groups import SepmGroup, read_group


async def site_domains(sepm: SepmApi) -> list[SepmDomain]:
    """Every domain; an empty list is refused (every SEPM has at least its Default domain)."""
    found = await sepm.domains()
    if not found:
        raise malformed("GET /domains", "no domain at all")
    return found


async def site_groups(sepm: SepmApi, *, page_size: int = 25) -> list[SepmGroup]:
    """Every group of every domain, each tagged with its domain."""
    groups = []
    for domain in await site_domains(sepm):
        async for item in sepm.iter_groups(domain_id=domain.id, page_size=page_size):
            groups.append(read_group(item, domain.id))
    return groups


async def iter_fleet_pages(
    sepm: SepmApi,
    *,
    last_update_ms: int = 0,
    page_size: int = 1000,
    domains: list[SepmDomain] | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of /computers of every domain (those given, else asked for), with the same
    lastUpdate filter."""
    for domain in domains if domains is not None else await site_domains(sepm):
        async for page in sepm.iter_computer_pages(
            last_update_ms=last_update_ms, page_size=page_size, domain_id=domain.id
        ):
            yield page
