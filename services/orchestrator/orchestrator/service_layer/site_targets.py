"""Publishing where each site is: the orchestrator alone writes a site's whole target, sealed
in the vault (certrotate_shared.site_directory), and workers act on nothing else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared import site_directory
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.site_directory import hostops_ref, sepm_ref
from certrotate_shared.vault import Vault
from orchestrator.adapters.orm import sagas, servers, sites
from orchestrator.domain.state import TERMINAL


def target_of(row: Any, server_rows: list[Any]) -> SiteTarget:
    """A site's target from its inventory rows (its site row and its servers' rows)."""
    return SiteTarget(
        site=row.name,
        version=row.version,
        api_url=row.api_url,
        credential_ref=sepm_ref(row.name),
        trusted_certificates_pem=list(row.trusted_certificates_pem),
        servers=[
            ServerTarget(
                name=s.name,
                address=s.address,
                hostnames=list(s.hostnames),
                version=s.version,
                ports={str(k): int(v) for k, v in s.ports.items()},
            )
            for s in server_rows
        ],
        host_ops=HostOpsTarget(
            driver=row.host_ops_driver,
            endpoint=row.host_ops_endpoint,
            credential_ref=hostops_ref(row.name) if row.host_ops_credentials_set else None,
        ),
    )


async def publish_target(
    session: AsyncSession, vault: Vault, name: str, *, also_trusted: list[str] | None = None
) -> int:
    """Seal the site's target where workers look it up; its new revision (0: no such site).

    Written before the caller commits, with the site's row locked, so the vault is never
    behind what a committed command may name (a failed commit leaves it ahead, which the next
    publication repairs). The trust set is the inventory's plus what every unfinished rotation
    of the site trusts (`also_trusted`: the one being created), since workers must keep
    reaching SEPM once it serves the new certificate."""
    row = (
        await session.execute(select(sites).where(sites.c.name == name).with_for_update())
    ).first()
    if row is None:
        return 0
    server_rows = (
        await session.execute(
            select(servers).where(servers.c.site == name).order_by(servers.c.name)
        )
    ).all()
    target = target_of(row, list(server_rows))
    trusted = list(target.trusted_certificates_pem)
    for pem in [*await _rotations_trust(session, name), *(also_trusted or [])]:
        if pem not in trusted:
            trusted.append(pem)
    revision = await site_directory.published_revision(vault, name) + 1
    target = target.model_copy(update={"trusted_certificates_pem": trusted, "revision": revision})
    await site_directory.publish(vault, target, revision=revision)
    return revision


async def publish_missing_targets(session: AsyncSession, vault: Vault) -> list[str]:
    """Publish every site that has no published target yet (registered before targets were
    published, or whose publication was lost); the names published."""
    published = []
    for name in (await session.execute(select(sites.c.name).order_by(sites.c.name))).scalars():
        if not await vault.exists(site_directory.target_ref(name)):
            await publish_target(session, vault, name)
            published.append(name)
    return published


async def _rotations_trust(session: AsyncSession, site: str) -> list[str]:
    states = (
        await session.execute(
            select(sagas.c.state).where(sagas.c.site == site, sagas.c.status.not_in(TERMINAL))
        )
    ).scalars()
    return [
        pem
        for state in states
        if isinstance(state, dict)
        for pem in (state.get("target") or {}).get("trusted_certificates_pem", [])
    ]
