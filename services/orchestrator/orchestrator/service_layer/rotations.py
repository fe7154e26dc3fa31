"""Starting a rotation as the API, a campaign or a webhook asks: pre-flight first, then the
saga, under the site's (and its replication farm's) lock and an optional Idempotency-Key."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from certrotate_shared.clock import Clock
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.vault import Vault
from orchestrator.adapters import site_locks
from orchestrator.adapters.clients import CertificatesClient, RegisteredBundle
from orchestrator.adapters.orm import idempotency_keys
from orchestrator.adapters.repository import SagaRepository, to_db
from orchestrator.domain.history import OperatorActed
from orchestrator.domain.saga import start_saga
from orchestrator.domain.state import CertificateInfo, RotationOptions, SagaState
from orchestrator.domain.window import InvalidWindowError, check_window
from orchestrator.service_layer import retention, site_targets, site_topology
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import ConflictError, InputRejectedError
from orchestrator.service_layer.preflight import Certificate, Preflight, site_hostnames
from orchestrator.service_layer.request_keys import request_fingerprint, same_request
from orchestrator.service_layer.rotation_options import in_clock_time
from orchestrator.service_layer.transitions import persist
from orchestrator.settings import Settings


@dataclass(frozen=True)
class Admission:
    """What an admission check decided once the certificate's fingerprint is known."""

    # Answer with this rotation; nothing new is started.
    existing: SagaState | None = None
    # Start the new rotation held (no command sent) until it is resumed.
    hold_reason: str | None = None
    # False: the held rotation takes the site's locks later, when what it waits for has ended.
    lock: bool = True


# Called in the creating transaction with the new rotation's id and its validated certificate;
# it decides about a site that is busy (webhook triggers: dedupe, supersede or site_busy).
AdmissionCheck = Callable[[UnitOfWork, str, CertificateInfo], Awaitable[Admission]]


@dataclass(frozen=True)
class RotationStarter:
    """What starting a rotation needs, built once by bootstrap and injected as `starter`: the
    API, a campaign and a webhook trigger all start rotations through `start`."""

    db: Database
    clock: Clock
    settings: Settings
    vault: Vault
    certificates: CertificatesClient
    alarm: TimerAlarm

    @property
    def preflight(self) -> Preflight:
        return Preflight(self.db, self.clock, self.settings, self.certificates)

    async def start(
        self,
        *,
        site: str,
        upload: Certificate | None,
        options: RotationOptions,
        change_id: str | None,
        requested_by: str,
        idempotency_key: str | None,
        body: dict[str, Any],
        admit: AdmissionCheck | None = None,
        principal: dict[str, str] | None = None,
        budget_reason: str | None = None,
        bundle: RegisteredBundle | None = None,
    ) -> tuple[SagaState, bool]:
        """Pre-flight, then the saga; (rotation, created). Nothing is created if pre-flight fails.

        `admit` (webhook triggers) may answer with an existing rotation or hold the new one.
        `bundle`: already pre-flighted for this site (a campaign did it when it was created)."""
        db, clock, settings, certificates = self.db, self.clock, self.settings, self.certificates
        fingerprint = request_fingerprint(settings, body)
        if idempotency_key:
            existing = await _by_idempotency_key(db, settings, idempotency_key, body)
            if existing is not None:
                return existing, False
        if options.maintenance_window is not None:
            try:
                check_window(options.maintenance_window, clock.now())
            except InvalidWindowError as exc:
                raise InputRejectedError(str(exc), code="invalid_window") from None
        async with db() as uow:
            target = await site_topology.site_target(uow.session, site)
            farm = await site_topology.replication_farm(uow.session, site)
            # Refuse early (before the upload goes anywhere); the lock rows below decide races.
            if admit is None:
                _refuse_if_busy(site, farm, await site_locks.holders(uow.session, farm))
        if bundle is None:
            assert upload is not None, "a rotation needs an upload or a pre-flighted bundle"
            bundle = await self.preflight.for_site(site, upload, site_hostnames(target))
        # TLS to SEPM must keep working once the servers present the new certificate.
        trusted = [*target.trusted_certificates_pem]
        if bundle.certificate_pem and bundle.certificate_pem not in trusted:
            trusted.append(bundle.certificate_pem)
        target = target.model_copy(update={"trusted_certificates_pem": trusted})
        saga_id = str(uuid.uuid4())
        now = clock.now()
        options = in_clock_time(options, float(getattr(clock, "speed", 1.0)))
        certificate = CertificateInfo(
            bundle_ref=bundle.bundle_ref,
            fingerprint_sha256=bundle.fingerprint_sha256,
            subject=bundle.subject,
            not_after=bundle.not_after,
            sans=bundle.sans,
        )
        try:
            async with db() as uow:
                admission = await admit(uow, saga_id, certificate) if admit else Admission()
                if admission.existing is not None:
                    await uow.commit()
                    return admission.existing, False
                # Workers act on the published target only: it must trust the new certificate
                # before the first command of this rotation can reach them.
                revision = await site_targets.publish_target(
                    uow.session, self.vault, site, also_trusted=trusted
                )
                decision = start_saga(
                    saga_id=saga_id,
                    target=target.model_copy(update={"revision": revision}),
                    certificate=certificate,
                    options=options,
                    now=now,
                    requested_by=requested_by,
                    change_id=change_id,
                    hold_reason=admission.hold_reason,
                )
                entry = OperatorActed(
                    at=now,
                    type="RotationRequested",
                    step="preflight",
                    actor=requested_by,
                    detail={
                        "site": site,
                        "change_id": change_id,
                        "options": options.model_dump(mode="json"),
                        "certificate": decision.state.certificate.model_dump(mode="json"),
                        "orphan_risk_budget_reason": budget_reason,
                        "principal": principal,
                    },
                )
                if idempotency_key:
                    await uow.session.execute(
                        insert(idempotency_keys).values(
                            key=idempotency_key, body_hash=fingerprint, saga_id=saga_id,
                            created_at=to_db(now),
                        )
                    )  # fmt: skip
                if admission.lock:
                    await site_locks.acquire(uow.session, farm, saga_id, now)
                await persist(uow, decision, version=None, cause=None, entry=entry)
                await uow.commit()
        except (IntegrityError, OperationalError):
            # The same key raced us to it: answer like a replay. Or another rotation took the
            # site or a partner first (SQLite may report that as a lock conflict).
            if idempotency_key:
                existing = await _by_idempotency_key(db, settings, idempotency_key, body)
                if existing is not None:
                    return existing, False
            async with db() as uow:
                _refuse_if_busy(site, farm, await site_locks.holders(uow.session, farm))
            raise
        self.alarm.ring()
        # However long it waits before the swap, its certificate must still be there.
        await retention.hold_now(certificates, [certificate.bundle_ref])
        return decision.state, True


def _refuse_if_busy(site: str, farm: set[str], held: dict[str, str]) -> None:
    if not held:
        return
    where, holder = sorted(held.items())[0]
    partners = sorted(farm - {site})
    farm_text = f" (it replicates with {', '.join(partners)})" if partners else ""
    on = f"site {site!r}" if where == site else f"its replication partner {where!r}"
    raise ConflictError(
        f"site {site!r}{farm_text} is busy: rotation {holder} is active on {on}; wait for it "
        "to finish or cancel it",
        code="site_busy",
        rotation_id=holder,
        site=where,
    )


async def _by_idempotency_key(
    db: Database, settings: Settings, key: str, body: dict[str, Any]
) -> SagaState | None:
    async with db() as uow:
        row = (
            await uow.session.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
        ).first()
        if row is None:
            return None
        if not same_request(settings, body, row.body_hash):
            raise ConflictError(
                f"Idempotency-Key {key!r} was used for a different request (rotation "
                f"{row.saga_id}); use a new key for a new rotation",
                code="idempotency_key_reused",
            )
        loaded = await SagaRepository(uow.session).get(row.saga_id)
    return loaded[0] if loaded else None
