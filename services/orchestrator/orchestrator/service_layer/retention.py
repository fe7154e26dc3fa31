"""Bundle lifetime and retention, swept by a durable periodic job (retention_job.py).

The certificates store destroys bundles nobody holds once they are older than its TTL (the
leftovers of a request that failed after pre-flight). Everything this service registers is
held instead: a live rotation's or campaign's bundle must never expire, however long the
rotation waits for its clients or the campaign for its turn. Each run holds them again (a hold
lost to a crash is made good) and purges what ended rotations and campaigns left behind once
the retention period is over: the verification values recorded, the backups taken on the
servers (deleted from the hosts by the certificates service, then from its records), the
replication and client-monitor services' records of the rotation (each purges on its own
retention, told by a PurgeRotationRecords command sent with the purge mark), a campaign's
unused bundles, and uploaded bundles nobody used lately.

A server the rotation left between certificates (its swap or its rollback unfinished) keeps
its backup: a person may still need it to roll the server back by hand. The rotation's
record and history stay, and so do the at-risk lists an approver accepted (the history names
them as the evidence of the accepted risk)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.clock import Clock
from certrotate_shared.message_retention import purge_inbox
from certrotate_shared.messages.retention import PurgeRotationRecords
from orchestrator.adapters import idempotency_keys
from orchestrator.adapters.bundle_tables import retention_purges, uploaded_bundles
from orchestrator.adapters.campaign_tables import campaigns
from orchestrator.adapters.clients import CertificatesClient, UpstreamUnavailableError
from orchestrator.adapters.orm import sagas
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.domain import campaign as campaign_domain
from orchestrator.domain.state import TERMINAL
from orchestrator.service_layer.deps import Database
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


BATCH = 500


# Server states in which the backup may still be the way back to a known certificate.
_BACKUP_STILL_NEEDED = frozenset({"updating", "failed", "rolling_back", "rollback_failed"})


WORKERS: tuple[Literal["replication", "client-monitor"], ...] = ("replication", "client-monitor")


async def hold_now(certificates: CertificatesClient, bundle_refs: list[str]) -> None:
    """Hold new bundles at once; if the store cannot be reached, the next run holds them (far
    inside the store's TTL)."""
    try:
        await certificates.hold_bundles(bundle_refs)
    except UpstreamUnavailableError as exc:
        log.warning("bundles not held yet (the retention job will): %s", exc)


def _state(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


async def live_bundle_refs(session: AsyncSession) -> set[str]:
    """Bundles of rotations that have not ended and of campaigns that have not ended."""
    refs: set[str] = set()
    rows = await session.execute(select(sagas.c.state).where(sagas.c.status.not_in(TERMINAL)))
    for (state,) in rows:
        refs.add(_state(state)["certificate"]["bundle_ref"])
    rows = await session.execute(
        select(campaigns.c.state).where(campaigns.c.status.not_in(campaign_domain.TERMINAL))
    )
    for (state,) in rows:
        refs |= _campaign_refs(_state(state))
    return refs


def _campaign_refs(state: dict[str, Any]) -> set[str]:
    return {
        ref
        for site in state.get("sites", {}).values()
        if (ref := (site.get("bundle") or {}).get("bundle_ref"))
    }


async def sweep(
    *, db: Database, clock: Clock, settings: Settings, certificates: CertificatesClient
) -> dict[str, int]:
    """One run: hold what is live, purge what is past its retention. Safe to repeat."""
    now = clock.now()
    async with db() as uow:
        live = await live_bundle_refs(uow.session)
        uploaded = set((await uow.session.execute(select(uploaded_bundles.c.id))).scalars())
    held = sorted(live | uploaded)
    for start in range(0, len(held), 10_000):
        await certificates.hold_bundles(held[start : start + 10_000])
    cutoff = to_db(now - timedelta(days=settings.retention_days))
    counts = {
        "held": len(held),
        "rotations": await _purge_rotations(db, certificates, cutoff, now),
        "campaigns": await _purge_campaigns(db, certificates, cutoff, live, now),
        "uploaded_bundles": await _purge_uploaded(
            db, certificates, to_db(now - timedelta(days=settings.uploaded_bundle_days))
        ),
        "inbox": await purge_inbox(db, retention_days=settings.inbox_retention_days),
        "idempotency_keys": await idempotency_keys.purge_expired(
            db, ended_before=to_db(now - _real_days(clock, settings.idempotency_key_days))
        ),
    }
    if any(count for name, count in counts.items() if name != "held"):
        log.info("retention: %s", counts)
    return counts


def _real_days(clock: Clock, days: float) -> timedelta:
    """`days` of the clients' time in clock time: an ITSM does not retry faster under an
    accelerated clock."""
    return timedelta(days=days * float(getattr(clock, "speed", 1.0)))


def _not_purged(owner: Any) -> Any:
    return ~exists().where(retention_purges.c.owner_id == owner)


async def _purge_rotations(
    db: Database, certificates: CertificatesClient, cutoff: datetime, now: datetime
) -> int:
    done = 0
    while True:
        async with db() as uow:
            rows = (
                await uow.session.execute(
                    select(sagas.c.saga_id, sagas.c.state, sagas.c.updated_at)
                    .where(
                        sagas.c.status.in_(TERMINAL),
                        sagas.c.updated_at < cutoff,
                        _not_purged(sagas.c.saga_id),
                    )
                    .limit(BATCH)
                )
            ).all()
        if not rows:
            return done
        ids = [r.saga_id for r in rows]
        states = {r.saga_id: _state(r.state) for r in rows}
        # The bundle went when the rotation ended; naming it again covers a lost purge command.
        refs = [state["certificate"]["bundle_ref"] for state in states.values()]
        keep = {saga: kept for saga, state in states.items() if (kept := _backups_kept(state))}
        await certificates.purge_retained(saga_ids=ids, bundle_refs=refs, keep_backups=keep)
        ended = {r.saga_id: from_db(r.updated_at) for r in rows}
        await _mark(db, ids, "rotation", now, ended=ended)
        done += len(ids)


def _backups_kept(state: dict[str, Any]) -> list[str]:
    return [
        server["name"]
        for server in state.get("servers", [])
        if server.get("status") in _BACKUP_STILL_NEEDED
    ]


async def _purge_campaigns(
    db: Database, certificates: CertificatesClient, cutoff: datetime, live: set[str], now: datetime
) -> int:
    done = 0
    while True:
        async with db() as uow:
            rows = (
                await uow.session.execute(
                    select(campaigns.c.campaign_id, campaigns.c.state)
                    .where(
                        campaigns.c.status.in_(campaign_domain.TERMINAL),
                        campaigns.c.updated_at < cutoff,
                        _not_purged(campaigns.c.campaign_id),
                    )
                    .limit(BATCH)
                )
            ).all()
        if not rows:
            return done
        # Sites never started keep an unused bundle; one a live rotation still uses stays.
        refs = sorted(set().union(*(_campaign_refs(_state(r.state)) for r in rows)) - live)
        await certificates.purge_retained(saga_ids=[], bundle_refs=refs)
        await _mark(db, [r.campaign_id for r in rows], "campaign", now)
        done += len(rows)


async def _purge_uploaded(db: Database, certificates: CertificatesClient, cutoff: datetime) -> int:
    last = func.coalesce(uploaded_bundles.c.last_used_at, uploaded_bundles.c.created_at)
    async with db() as uow:
        ids = list(
            (
                await uow.session.execute(select(uploaded_bundles.c.id).where(last < cutoff))
            ).scalars()
        )
    if ids:
        await certificates.purge_retained(saga_ids=[], bundle_refs=ids)
        async with db() as uow:
            await uow.session.execute(
                delete(uploaded_bundles).where(uploaded_bundles.c.id.in_(ids))
            )
            await uow.commit()
    return len(ids)


async def _mark(
    db: Database,
    owners: list[str],
    kind: str,
    now: datetime,
    *,
    ended: dict[str, datetime] | None = None,
) -> None:
    """Mark the owners purged; for rotations, tell the workers in the same transaction (the
    outbox), so a crash can neither lose their purge nor send it for an unmarked rotation."""
    async with db() as uow:
        await uow.session.execute(
            insert(retention_purges),
            [{"owner_id": o, "kind": kind, "purged_at": to_db(now)} for o in owners],
        )
        for saga_id, ended_at in (ended or {}).items():
            for service in WORKERS:
                uow.emit(
                    PurgeRotationRecords(
                        idempotency_key=f"{saga_id}:retention:{service}",
                        target_service=service,
                        ended_at=ended_at,
                    ),
                    saga_id=saga_id,
                )
        await uow.commit()
