"""A site's trust set as stored: the certificates its clients may trust, and the fingerprints
of those the last completed rotation replaced. Read and written once per completed rotation,
on asyncpg itself on PostgreSQL (see repository.py)."""

from __future__ import annotations

import json

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.db import asyncpg_connection
from orchestrator.adapters.orm import sites

_READ = select(sites.c.trusted_certificates_pem, sites.c.superseded_fingerprints).where(
    sites.c.name == bindparam("_site")
)
_WRITE = (
    update(sites)
    .where(sites.c.name == bindparam("_site"))
    .values(
        trusted_certificates_pem=bindparam("trusted"),
        superseded_fingerprints=bindparam("superseded"),
    )
)
_PG_READ = """SELECT trusted_certificates_pem::text, superseded_fingerprints::text
    FROM sites WHERE name = $1"""
_PG_WRITE = """UPDATE sites SET trusted_certificates_pem = $2::json,
    superseded_fingerprints = $3::json WHERE name = $1"""


async def read(session: AsyncSession, site: str) -> tuple[list[str], list[str]] | None:
    """(trusted PEMs, superseded fingerprints), or None if the site is gone."""
    driver = await asyncpg_connection(session)
    if driver is not None:
        row = await driver.fetchrow(_PG_READ, site)
        if row is None:
            return None
        return list(json.loads(row[0])), list(json.loads(row[1]) if row[1] else [])
    found = (await session.execute(_READ, {"_site": site})).first()
    if found is None:
        return None
    return list(found.trusted_certificates_pem), list(found.superseded_fingerprints or [])


async def write(
    session: AsyncSession, site: str, trusted: list[str], superseded: list[str]
) -> None:
    driver = await asyncpg_connection(session)
    if driver is not None:
        await driver.execute(_PG_WRITE, site, json.dumps(trusted), json.dumps(superseded))
        return
    await session.execute(_WRITE, {"_site": site, "trusted": trusted, "superseded": superseded})
