"""The certificate store in SQL: sealed bundles, verification originals, server backups."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certificates.adapters.jobs import add_job, purge_finished
from certificates.adapters.orm import bundles, server_backups, verification_originals
from certificates.domain.keystore import BundleFormat, Upload
from certificates.domain.validation import ValidatedCertificate
from certificates.service_layer.store import BundleUnavailableError, Original, StoredBundle
from certrotate_shared.envelope import Envelope
from certrotate_shared.hostops import CertificateBackup, CertificateBundle
from certrotate_shared.message_retention import purge_rotation_outcomes
from certrotate_shared.messages.certificates import DeleteServerBackup
from certrotate_shared.secretbox import SecretBox


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def new_bundle_ref() -> str:
    return f"bnd_{secrets.token_hex(16)}"


def seal_upload(box: SecretBox, bundle_ref: str, upload: Upload) -> bytes:
    """The upload's secrets as one AES-GCM blob bound to its reference."""
    plain = json.dumps(
        {
            "data": upload.data.hex(),
            "password": upload.password,
            "key": upload.key.hex() if upload.key is not None else None,
        }
    ).encode()
    return box.seal(plain, f"bundle:{bundle_ref}")


def open_sealed(
    box: SecretBox, bundle_ref: str, fmt: BundleFormat, sealed: bytes
) -> CertificateBundle:
    fields = json.loads(box.open(sealed, f"bundle:{bundle_ref}"))
    return CertificateBundle(
        format=fmt,
        data=bytes.fromhex(fields["data"]),
        password=fields["password"],
        key=bytes.fromhex(fields["key"]) if fields["key"] is not None else None,
    )


async def add_bundle(
    session: AsyncSession,
    box: SecretBox,
    *,
    site: str,
    upload: Upload,
    validated: ValidatedCertificate,
    now: datetime,
) -> str:
    bundle_ref = new_bundle_ref()
    await session.execute(
        bundles.insert().values(
            bundle_ref=bundle_ref,
            site=site,
            format=upload.format,
            fingerprint_sha256=validated.fingerprint_sha256,
            subject=validated.subject,
            not_after=validated.not_after,
            sealed=seal_upload(box, bundle_ref, upload),
            created_at=now,
            referenced_at=None,
        )
    )
    return bundle_ref


async def rekey_bundles(session: AsyncSession, box: SecretBox) -> int:
    """Seal every stored bundle again under the current master key; returns how many."""
    done = 0
    rows = (await session.execute(select(bundles.c.bundle_ref, bundles.c.sealed))).all()
    for row in rows:
        sealed = bytes(row.sealed)
        if box.sealed_by_current(sealed):
            continue
        context = f"bundle:{row.bundle_ref}"
        again = box.seal(box.open(sealed, context), context)
        await session.execute(
            update(bundles).where(bundles.c.bundle_ref == row.bundle_ref).values(sealed=again)
        )
        done += 1
    return done


async def opened_bundle(
    session: AsyncSession, box: SecretBox, bundle_ref: str
) -> CertificateBundle | None:
    row = (await session.execute(select(bundles).where(bundles.c.bundle_ref == bundle_ref))).first()
    if row is None:
        return None
    return open_sealed(box, bundle_ref, row.format, bytes(row.sealed))


async def delete_bundle(session: AsyncSession, bundle_ref: str) -> bool:
    result = await session.execute(delete(bundles).where(bundles.c.bundle_ref == bundle_ref))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_referenced(session: AsyncSession, bundle_ref: str, now: datetime) -> None:
    await session.execute(
        update(bundles)
        .where(bundles.c.bundle_ref == bundle_ref, bundles.c.referenced_at.is_(None))
        .values(referenced_at=now)
    )


async def hold_bundles(session: AsyncSession, refs: list[str], now: datetime) -> list[str]:
    """Keep these bundles past the TTL (a rotation, a campaign or an upload names them); the
    orchestrator deletes them when their owner's retention ends. Returns the ones found."""
    if not refs:
        return []
    await session.execute(
        update(bundles)
        .where(bundles.c.bundle_ref.in_(refs), bundles.c.referenced_at.is_(None))
        .values(referenced_at=now)
    )
    found = await session.execute(
        select(bundles.c.bundle_ref).where(bundles.c.bundle_ref.in_(refs))
    )
    return list(found.scalars())


async def purge_retained(
    session: AsyncSession,
    *,
    saga_ids: list[str],
    bundle_refs: list[str],
    keep_backups: dict[str, list[str]] | None = None,
    now: datetime,
) -> dict[str, int]:
    """What a rotation left behind once its retention is over: its bundles and the
    verification values it recorded go now; each certificate backup taken on its servers is
    queued for deletion from its host (its record goes when the files are gone), except those
    in `keep_backups` (saga -> servers whose rollback may still need them); its finished jobs,
    their operator tasks and its commands' answers go too (an unfinished job once finished:
    housekeeping)."""
    counts = {"bundles": 0, "verification_originals": 0, "server_backups": 0,
              "server_backups_kept": 0, "command_outcomes": 0, "jobs": 0,
              "operator_tasks": 0}  # fmt: skip
    if bundle_refs:
        done = await session.execute(delete(bundles).where(bundles.c.bundle_ref.in_(bundle_refs)))
        counts["bundles"] = done.rowcount  # type: ignore[attr-defined]
    if not saga_ids:
        return counts
    done = await session.execute(
        delete(verification_originals).where(verification_originals.c.saga_id.in_(saga_ids))
    )
    counts["verification_originals"] = done.rowcount  # type: ignore[attr-defined]
    keep = keep_backups or {}
    rows = (
        await session.execute(
            select(server_backups).where(
                server_backups.c.saga_id.in_(saga_ids),
                server_backups.c.deletion_requested_at.is_(None),
            )
        )
    ).all()
    for row in rows:
        if row.server in keep.get(row.saga_id, ()):
            counts["server_backups_kept"] += 1
            continue
        command = DeleteServerBackup(
            idempotency_key=f"{row.saga_id}:retention:delete-backup:{row.site}:{row.server}",
            site=row.site,
            server=row.server,
        )
        await add_job(
            session,
            Envelope.wrap(command, saga_id=row.saga_id),
            command.idempotency_key,
            now,
            rotation_purged=True,
        )
        await session.execute(
            update(server_backups)
            .where(_backup_row(row.saga_id, row.site, row.server))
            .values(deletion_requested_at=now)
        )
        counts["server_backups"] += 1
    for saga_id in saga_ids:
        # The rotation has ended: nobody re-sends its commands; one still running stays.
        counts["command_outcomes"] += await purge_rotation_outcomes(session, saga_id)
    counts.update(await purge_finished(session, saga_ids, now=now))
    return counts


def _backup_row(saga_id: str, site: str, server: str) -> Any:
    t = server_backups
    return (t.c.saga_id == saga_id) & (t.c.site == site) & (t.c.server == server)


async def purge_unreferenced(session: AsyncSession, *, created_before: datetime) -> list[str]:
    """Delete bundles no command named that were uploaded before the cut-off."""
    stale = (
        (
            await session.execute(
                select(bundles.c.bundle_ref).where(
                    bundles.c.referenced_at.is_(None), bundles.c.created_at < created_before
                )
            )
        )
        .scalars()
        .all()
    )
    if stale:
        await session.execute(delete(bundles).where(bundles.c.bundle_ref.in_(stale)))
    return list(stale)


class SqlCertificateStore:
    """CertificateStore over the service's database; each call is its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, clock: Any):
        self._sessions = sessions
        self._box = box
        self._clock = clock

    async def load_bundle(self, bundle_ref: str) -> StoredBundle:
        async with self._sessions() as session:
            row = (
                await session.execute(select(bundles).where(bundles.c.bundle_ref == bundle_ref))
            ).first()
        if row is None:
            raise BundleUnavailableError(
                f"bundle {bundle_ref} is not in the certificate store (never stored, or purged)"
            )
        bundle = open_sealed(self._box, bundle_ref, row.format, bytes(row.sealed))
        return StoredBundle(bundle, row.fingerprint_sha256)

    async def originals(self, saga_id: str, site: str) -> list[Original]:
        t = verification_originals
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(t)
                    .where(t.c.saga_id == saga_id, t.c.site == site)
                    .order_by(t.c.recorded_at, t.c.group_id, t.c.location_id)
                )
            ).all()
        return [Original(r.group_id, r.location_id, r.full_path_name, r.original) for r in rows]

    async def record_original(self, saga_id: str, site: str, original: Original) -> None:
        async with self._sessions() as session:
            stmt = _insert(session, verification_originals).values(
                saga_id=saga_id,
                site=site,
                group_id=original.group_id,
                location_id=original.location_id,
                full_path_name=original.full_path_name,
                original=original.value,
                recorded_at=self._clock.now(),
            )
            await session.execute(stmt.on_conflict_do_nothing())
            await session.commit()

    async def backup_for(self, saga_id: str, site: str, server: str) -> CertificateBackup | None:
        t = server_backups
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(t).where(t.c.saga_id == saga_id, t.c.site == site, t.c.server == server)
                )
            ).first()
        return CertificateBackup(row.backup_ref, row.fingerprint_sha256) if row else None

    async def record_backup(
        self, saga_id: str, site: str, server: str, backup: CertificateBackup
    ) -> CertificateBackup:
        async with self._sessions() as session:
            stmt = _insert(session, server_backups).values(
                saga_id=saga_id,
                site=site,
                server=server,
                backup_ref=backup.backup_ref,
                fingerprint_sha256=backup.fingerprint,
                created_at=self._clock.now(),
            )
            await session.execute(stmt.on_conflict_do_nothing())
            await session.commit()
        kept = await self.backup_for(saga_id, site, server)
        assert kept is not None
        return kept

    async def forget_backup(self, saga_id: str, site: str, server: str) -> None:
        """The backup's files are gone from the host: its record goes too."""
        async with self._sessions() as session:
            await session.execute(delete(server_backups).where(_backup_row(saga_id, site, server)))
            await session.commit()
