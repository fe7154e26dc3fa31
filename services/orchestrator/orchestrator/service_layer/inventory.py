"""Sites and their stored rows; their credentials go to the vault and never come back out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared import site_directory
from certrotate_shared.site_directory import hostops_ref, sepm_ref
from certrotate_shared.vault import Vault
from orchestrator.adapters.orm import servers, sites
from orchestrator.adapters.paging import Key
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.domain.state import MaintenanceWindow
from orchestrator.domain.window import InvalidWindowError, check_window
from orchestrator.service_layer import site_targets
from orchestrator.service_layer.errors import InputRejectedError, NotFoundError
from orchestrator.service_layer.paging import page


async def upsert(session: AsyncSession, table: Any, key: str, values: dict[str, Any]) -> None:
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
    existing = await site_row(session, name)
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
    await upsert(session, sites, "name", values)
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


async def site_row(session: AsyncSession, name: str) -> Any:
    return (await session.execute(select(sites).where(sites.c.name == name))).first()


async def server_rows(session: AsyncSession, site: str | None) -> list[Any]:
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


def server_view(row: Any) -> dict[str, Any]:
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
    row = await site_row(session, name)
    if row is None:
        raise NotFoundError(f"no site named {name!r}; create it with POST /v1/sites")
    return _site_view(row, [s.name for s in await server_rows(session, name)])


async def list_sites(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(sites).order_by(sites.c.name))).all()
    names: dict[str, list[str]] = {}
    for server in await server_rows(session, None):
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
