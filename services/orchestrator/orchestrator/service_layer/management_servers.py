"""A site's management servers; their credentials (SEPM, host operations) go to the vault and
never come back out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.vault import Vault
from orchestrator.adapters.orm import servers
from orchestrator.adapters.paging import Key
from orchestrator.adapters.repository import to_db
from orchestrator.service_layer import site_targets
from orchestrator.service_layer.errors import InputRejectedError, NotFoundError
from orchestrator.service_layer.inventory import server_rows, server_view, site_row, upsert
from orchestrator.service_layer.paging import page

# Every TLS listener SEPM serves the certificate on; each is verified after the install.
REQUIRED_TLS_PORTS = ("8443", "443", "8446")


async def put_server(
    session: AsyncSession, vault: Vault, *, name: str, spec: dict[str, Any], now: datetime
) -> dict[str, Any]:
    missing = [p for p in REQUIRED_TLS_PORTS if p not in spec.get("ports", {})]
    if missing:
        raise InputRejectedError(
            f"server {name!r} must list every SEPM TLS port; missing: {', '.join(missing)} "
            '(e.g. "ports": {"8443": 8443, "443": 443, "8446": 8446}, and 8445 where used)',
            code="tls_ports_missing",
        )
    if await site_row(session, spec["site"]) is None:
        raise InputRejectedError(
            f"no site named {spec['site']!r}; create the site first", code="unknown_site"
        )
    values = {
        "name": name,
        "site": spec["site"],
        "address": spec["address"],
        "hostnames": list(spec.get("hostnames", [])),
        "version": spec["version"],
        "ports": {str(k): int(v) for k, v in spec.get("ports", {}).items()},
        "created_at": to_db(now),
        "updated_at": to_db(now),
    }
    previous = (
        await session.execute(select(servers.c.site).where(servers.c.name == name))
    ).scalar_one_or_none()
    await upsert(session, servers, "name", values)
    for site in {spec["site"], previous} - {None}:
        await site_targets.publish_target(session, vault, site)
    return await get_server(session, name)


async def get_server(session: AsyncSession, name: str) -> dict[str, Any]:
    row = (await session.execute(select(servers).where(servers.c.name == name))).first()
    if row is None:
        raise NotFoundError(f"no management server named {name!r}")
    return server_view(row)


async def list_servers(session: AsyncSession, site: str | None) -> list[dict[str, Any]]:
    return [server_view(r) for r in await server_rows(session, site)]


async def page_servers(
    session: AsyncSession, site: str | None, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Management servers by name (of one site, or all), `limit` at a time after `cursor`."""
    query = select(servers)
    if site is not None:
        query = query.where(servers.c.site == site)
    rows, next_cursor = await page(session, query, [Key(servers.c.name)], cursor=cursor,
                                   limit=limit)  # fmt: skip
    return [server_view(r) for r in rows], next_cursor


async def delete_server(session: AsyncSession, vault: Vault, name: str) -> None:
    server = await get_server(session, name)
    await session.execute(delete(servers).where(servers.c.name == name))
    await site_targets.publish_target(session, vault, server["site"])
