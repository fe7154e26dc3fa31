"""Sites and management servers; their credentials go to the vault and never come back out."""

from __future__ import annotations

import ssl
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared import site_directory
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.site_directory import hostops_ref, sepm_ref
from certrotate_shared.vault import Vault
from orchestrator.adapters.orm import sagas, servers, sites
from orchestrator.adapters.paging import Key
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.domain.state import MaintenanceWindow
from orchestrator.domain.window import InvalidWindowError, check_window
from orchestrator.service_layer import site_targets
from orchestrator.service_layer.errors import InputRejectedError, NotFoundError
from orchestrator.service_layer.paging import page


async def _upsert(session: AsyncSession, table: Any, key: str, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(values)
    update = {k: v for k, v in values.items() if k not in (key, "created_at")}
    await session.execute(stmt.on_conflict_do_update(index_elements=[key], set_=update))


async def put_site(
    session: AsyncSession,
    vault: Vault,
    *,
    name: str,
    spec: dict[str, Any],
    sepm_credentials: dict[str, str] | None,
    host_ops_credentials: dict[str, str] | None,
    now: datetime,
) -> dict[str, Any]:
    """Create or replace a site; credentials left out keep the ones already stored, unless
    the address they are sent to changes (then they must be given again)."""
    window = spec.get("maintenance_window")
    if window is not None:
        try:
            check_window(MaintenanceWindow.model_validate(window), now)
        except InvalidWindowError as exc:
            raise InputRejectedError(f"maintenance_window: {exc}", code="invalid_window") from None
    existing = await _site_row(session, name)
    if existing is None and sepm_credentials is None:
        raise InputRejectedError(
            "a new site needs sepm_credentials (username, password, domain)",
            code="credentials_missing",
        )
    if existing is not None:
        _refuse_credentials_moving(existing, spec, sepm_credentials, host_ops_credentials)
    store = vault
    if sepm_credentials is not None:
        await store.put(sepm_ref(name), "sepm", sepm_credentials, f"SEPM API account of {name}")
    if host_ops_credentials is not None:
        await store.put(
            hostops_ref(name), "hostops", host_ops_credentials, f"host operations at {name}"
        )
    host_ops = spec["host_ops"]
    values = {
        "name": name,
        "api_url": spec["api_url"],
        "version": spec["version"],
        "replication_partners": list(spec.get("replication_partners", [])),
        "trusted_certificates_pem": list(spec.get("trusted_certificates_pem", [])),
        "host_ops_driver": host_ops["driver"],
        "host_ops_endpoint": host_ops.get("endpoint"),
        "tags": sorted(set(spec.get("tags", []))),
        "maintenance_window": window,
        "credentials_set": True,
        "host_ops_credentials_set": host_ops_credentials is not None
        or bool(existing is not None and existing.host_ops_credentials_set),
        "created_at": to_db(now),
        "updated_at": to_db(now),
    }
    await _upsert(session, sites, "name", values)
    await site_targets.publish_target(session, vault, name)
    return await get_site(session, name)


def _refuse_credentials_moving(
    existing: Any,
    spec: dict[str, Any],
    sepm_credentials: dict[str, str] | None,
    host_ops_credentials: dict[str, str] | None,
) -> None:
    """Stored passwords go where the site points: never to a new place nobody re-confirmed."""
    if spec["api_url"] != existing.api_url and sepm_credentials is None:
        raise InputRejectedError(
            f"the SEPM API URL changes ({existing.api_url} -> {spec['api_url']}): send "
            "sepm_credentials again, so the stored account is not sent to the new address",
            code="credentials_required",
        )
    host_ops = spec["host_ops"]
    moved = (host_ops["driver"], host_ops.get("endpoint")) != (
        existing.host_ops_driver,
        existing.host_ops_endpoint,
    )
    if moved and existing.host_ops_credentials_set and host_ops_credentials is None:
        raise InputRejectedError(
            "the host-operations driver or endpoint changes: send host_ops_credentials again, "
            "so the stored Windows account is not sent to the new endpoint",
            code="credentials_required",
        )


def check_site_policy(spec: dict[str, Any], *, rehearsal: bool) -> None:
    """Refuse what production must never do: SEPM over plain HTTP, the twin's host agent."""
    if not str(spec["api_url"]).lower().startswith("https://"):
        raise InputRejectedError(
            "api_url must be https:// (the SEPM account's password travels to it)",
            code="https_required",
        )
    for index, pem in enumerate(spec.get("trusted_certificates_pem", [])):
        if not _parses_as_certificates(pem):
            raise InputRejectedError(
                f"trusted_certificates_pem[{index}] is not a PEM certificate that parses "
                "(expected -----BEGIN CERTIFICATE----- ... of the SEPM server or its CA)",
                code="invalid_trust_pem",
            )
    if spec["host_ops"]["driver"] == "twin" and not rehearsal:
        raise InputRejectedError(
            "the twin driver drives the simulator, not SEPM hosts; it is accepted only in a "
            "rehearsal (CERTROTATE_ORCHESTRATOR_REHEARSAL=true, set by `certrotate up --twin` "
            "and the demo)",
            code="twin_driver_refused",
        )


def _parses_as_certificates(pem: str) -> bool:
    # The TLS stack that will use the trust set is the judge (it parses every certificate).
    # A bare context: create_default_context() would first load the system's CA store, which
    # cost more than the rest of a site's registration together.
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return False
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        return False
    return True


async def _site_row(session: AsyncSession, name: str) -> Any:
    return (await session.execute(select(sites).where(sites.c.name == name))).first()


async def _server_rows(session: AsyncSession, site: str | None) -> list[Any]:
    query = select(servers).order_by(servers.c.name)
    if site is not None:
        query = query.where(servers.c.site == site)
    return list((await session.execute(query)).all())


def _site_view(row: Any, server_names: list[str]) -> dict[str, Any]:
    return {
        "name": row.name,
        "api_url": row.api_url,
        "version": row.version,
        "replication_partners": row.replication_partners,
        "trusted_certificates_count": len(row.trusted_certificates_pem),
        "host_ops": {"driver": row.host_ops_driver, "endpoint": row.host_ops_endpoint},
        "tags": list(row.tags or []),
        "maintenance_window": row.maintenance_window,
        "credentials_set": row.credentials_set,
        "host_ops_credentials_set": row.host_ops_credentials_set,
        "servers": server_names,
        "created_at": from_db(row.created_at),
        "updated_at": from_db(row.updated_at),
    }


def _server_view(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "site": row.site,
        "address": row.address,
        "hostnames": row.hostnames,
        "version": row.version,
        "ports": row.ports,
        "created_at": from_db(row.created_at),
        "updated_at": from_db(row.updated_at),
    }


async def get_site(session: AsyncSession, name: str) -> dict[str, Any]:
    row = await _site_row(session, name)
    if row is None:
        raise NotFoundError(f"no site named {name!r}; create it with POST /v1/sites")
    return _site_view(row, [s.name for s in await _server_rows(session, name)])


async def list_sites(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(sites).order_by(sites.c.name))).all()
    names: dict[str, list[str]] = {}
    for server in await _server_rows(session, None):
        names.setdefault(server.site, []).append(server.name)
    return [_site_view(r, names.get(r.name, [])) for r in rows]


async def page_sites(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Sites by name, `limit` at a time after `cursor`."""
    rows, next_cursor = await page(session, select(sites), [Key(sites.c.name)], cursor=cursor,
                                   limit=limit)  # fmt: skip
    names: dict[str, list[str]] = {}
    if rows:
        query = select(servers.c.site, servers.c.name).where(
            servers.c.site.in_([r.name for r in rows])
        )
        for server in (await session.execute(query.order_by(servers.c.name))).all():
            names.setdefault(server.site, []).append(server.name)
    return [_site_view(r, names.get(r.name, [])) for r in rows], next_cursor


async def delete_site(session: AsyncSession, vault: Vault, name: str) -> None:
    await get_site(session, name)
    await session.execute(delete(servers).where(servers.c.site == name))
    await session.execute(delete(sites).where(sites.c.name == name))
    store = vault
    await site_directory.withdraw(store, name)
    await store.delete(sepm_ref(name))
    await store.delete(hostops_ref(name))


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
    if await _site_row(session, spec["site"]) is None:
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
    await _upsert(session, servers, "name", values)
    for site in {spec["site"], previous} - {None}:
        await site_targets.publish_target(session, vault, site)
    return await get_server(session, name)


async def get_server(session: AsyncSession, name: str) -> dict[str, Any]:
    row = (await session.execute(select(servers).where(servers.c.name == name))).first()
    if row is None:
        raise NotFoundError(f"no management server named {name!r}")
    return _server_view(row)


async def list_servers(session: AsyncSession, site: str | None) -> list[dict[str, Any]]:
    return [_server_view(r) for r in await _server_rows(session, site)]


async def page_servers(
    session: AsyncSession, site: str | None, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Management servers by name (of one site, or all), `limit` at a time after `cursor`."""
    query = select(servers)
    if site is not None:
        query = query.where(servers.c.site == site)
    rows, next_cursor = await page(session, query, [Key(servers.c.name)], cursor=cursor,
                                   limit=limit)  # fmt: skip
    return [_server_view(r) for r in rows], next_cursor


async def delete_server(session: AsyncSession, vault: Vault, name: str) -> None:
    server = await get_server(session, name)
    await session.execute(delete(servers).where(servers.c.name == name))
    await site_targets.publish_target(session, vault, server["site"])


async def site_target(session: AsyncSession, name: str) -> SiteTarget:
    """What workers need to act on a site, minus secrets (the vault refs name them)."""
    row = await _site_row(session, name)
    if row is None:
        raise InputRejectedError(
            f"unknown site {name!r}: register it with POST /v1/sites first", code="unknown_site"
        )
    rows = await _server_rows(session, name)
    if not rows:
        raise InputRejectedError(
            f"site {name!r} has no management servers: add them with POST /v1/servers",
            code="no_servers",
        )
    return site_targets.target_of(row, rows)


async def set_tags(
    session: AsyncSession, name: str, tags: list[str], *, now: datetime
) -> dict[str, Any]:
    await get_site(session, name)
    await session.execute(
        update(sites)
        .where(sites.c.name == name)
        .values(tags=sorted(set(tags)), updated_at=to_db(now))
    )
    return await get_site(session, name)


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
    row = await _site_row(session, site)
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
