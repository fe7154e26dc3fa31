"""Bundles uploaded once (POST /v1/bundles) and named by id in rotations, webhook triggers and
campaigns. The certificates service keeps the sealed keystore; this side keeps what a person
may see (fingerprint, names, validity). Each use is pre-flighted again for its own site and
gets a copy of its own, so a rotation's end never destroys a bundle others still name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.clock import Clock
from orchestrator.adapters.bundle_tables import uploaded_bundles
from orchestrator.adapters.clients import CertificatesClient, UpstreamUnavailableError
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.service_layer import audit_log, preflight, retention, site_topology
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import NotFoundError, UpstreamError
from orchestrator.settings import Settings


async def upload_bundle(
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    certificates: CertificatesClient,
    upload: preflight.CertificateUpload,
    site: str | None,
    description: str,
    by: str,
) -> dict[str, Any]:
    """Pre-flight (for `site`'s names when given), seal it in the store, describe it."""
    hostnames: list[str] = []
    if site is not None:
        async with db() as uow:
            hostnames = preflight.site_hostnames(await site_topology.site_target(uow.session, site))
    checks = preflight.Preflight(db, clock, settings, certificates)
    bundle = await checks.for_site(site or "", upload, hostnames)
    now = clock.now()
    row = {
        "id": bundle.bundle_ref,
        "format": upload.format,
        "fingerprint_sha256": bundle.fingerprint_sha256,
        "subject": bundle.subject,
        "not_after": to_db(bundle.not_after) if bundle.not_after else None,
        "sans": list(bundle.sans),
        "certificate_pem": bundle.certificate_pem,
        "site": site,
        "description": description,
        "uploaded_by": by,
        "created_at": to_db(now),
        "last_used_at": None,
    }
    async with db() as uow:
        await uow.session.execute(insert(uploaded_bundles).values(**row))
        await uow.commit()
    await retention.hold_now(certificates, [bundle.bundle_ref])
    return _view_of(row)


async def list_bundles(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(uploaded_bundles).order_by(uploaded_bundles.c.created_at, uploaded_bundles.c.id)
        )
    ).all()
    return [_view(r) for r in rows]


async def get_bundle(session: AsyncSession, bundle_id: str) -> dict[str, Any]:
    row = await _row(session, bundle_id)
    if row is None:
        raise NotFoundError(f"no bundle {bundle_id!r}", code="unknown_bundle")
    return _view(row)


async def delete_bundle(
    bundle_id: str, *, by: str, db: Database, clock: Clock, certificates: CertificatesClient
) -> None:
    """Destroy it in the store, then forget it here. Only uploaded bundles can be named: never
    a rotation's own copy."""
    async with db() as uow:
        if await _row(uow.session, bundle_id) is None:
            raise NotFoundError(f"no bundle {bundle_id!r}", code="unknown_bundle")
    try:
        await certificates.purge_retained(saga_ids=[], bundle_refs=[bundle_id])
    except UpstreamUnavailableError as exc:
        raise UpstreamError(f"{exc}; the bundle is kept", code="certificates_unavailable") from None
    async with db() as uow:
        await uow.session.execute(
            delete(uploaded_bundles).where(uploaded_bundles.c.id == bundle_id)
        )
        await audit_log.record(
            uow.session, actor=by, action="bundle.deleted", target=bundle_id, now=clock.now()
        )
        await uow.commit()


async def _row(session: AsyncSession, bundle_id: str) -> Any:
    return (
        await session.execute(select(uploaded_bundles).where(uploaded_bundles.c.id == bundle_id))
    ).first()


def _view(row: Any) -> dict[str, Any]:
    return _view_of(row._asdict())


def _view_of(row: dict[str, Any]) -> dict[str, Any]:
    def at(value: datetime | None) -> datetime | None:
        return from_db(value) if value is not None else None

    return {
        "id": row["id"],
        "format": row["format"],
        "fingerprint_sha256": row["fingerprint_sha256"],
        "subject": row["subject"],
        "not_after": at(row["not_after"]),
        "sans": list(row["sans"] or []),
        "site": row["site"],
        "description": row["description"],
        "uploaded_by": row["uploaded_by"],
        "created_at": at(row["created_at"]),
        "last_used_at": at(row.get("last_used_at")),
    }
