"""What rotations and campaigns read of the inventory: a site's target (servers, trust), its
tags and window, and the replication farm it belongs to (rotated one site at a time)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.messages.common import SiteTarget
from orchestrator.adapters.orm import sagas, sites
from orchestrator.domain.state import MaintenanceWindow
from orchestrator.service_layer import site_targets
from orchestrator.service_layer.errors import InputRejectedError
from orchestrator.service_layer.inventory import server_rows, site_row


async def site_target(session: AsyncSession, name: str) -> SiteTarget:
    """What workers need to act on a site, minus secrets (the vault refs name them)."""
    row = await site_row(session, name)
    if row is None:
        raise InputRejectedError(
            f"unknown site {name!r}: register it with POST /v1/sites first", code="unknown_site"
        )
    rows = await server_rows(session, name)
    if not rows:
        raise InputRejectedError(
            f"site {name!r} has no management servers: add them with POST /v1/servers",
            code="no_servers",
        )
    return site_targets.target_of(row, rows)


async def sites_tagged(session: AsyncSession, tags: list[str]) -> dict[str, list[str]]:
    """tag -> the names of the sites carrying it now, in name order."""
    found: dict[str, list[str]] = {tag: [] for tag in tags}
    rows = await session.execute(select(sites.c.name, sites.c.tags).order_by(sites.c.name))
    for name, carried in rows.all():
        for tag in set(carried or []) & set(found):
            found[tag].append(name)
    return found


async def site_window(session: AsyncSession, site: str) -> MaintenanceWindow | None:
    """The site's own maintenance window, if the inventory gives it one."""
    row = await site_row(session, site)
    window = row.maintenance_window if row is not None else None
    return MaintenanceWindow.model_validate(window) if window else None


async def replication_farm(session: AsyncSession, site: str) -> set[str]:
    """The site and every site it replicates with, transitively and in either direction.

    Partners come from the inventory and from what SEPM reported at each site's last
    inspection (a partnership set up in SEPM but not registered here still counts)."""
    return set(await replication_graph(session, site))


async def replication_graph(session: AsyncSession, site: str) -> dict[str, set[str]]:
    """The site's farm as a graph: each of its sites -> its direct partners."""
    edges: dict[str, set[str]] = {}

    def link(a: str, b: str) -> None:
        edges.setdefault(a, set()).add(b)
        edges.setdefault(b, set()).add(a)

    for row in (await session.execute(select(sites.c.name, sites.c.replication_partners))).all():
        for partner in row.replication_partners:
            link(row.name, partner)
    farm: set[str] = set()
    frontier = [site]
    while frontier:
        current = frontier.pop()
        if current in farm:
            continue
        farm.add(current)
        for partner in await _reported_partners(session, current):
            link(current, partner)
        frontier.extend(edges.get(current, set()) - farm)
    return {member: edges.get(member, set()) & farm for member in farm}


async def _reported_partners(session: AsyncSession, site: str) -> list[str]:
    state = (
        await session.execute(
            select(sagas.c.state)
            .where(sagas.c.site == site)
            .order_by(sagas.c.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if not isinstance(state, dict):
        return []
    return [p["name"] for p in state.get("partners", []) if isinstance(p, dict) and p.get("name")]
