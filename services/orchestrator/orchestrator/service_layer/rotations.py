"""Rotations as the API sees them: request (pre-flight first), operator actions, queries."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from certrotate_shared import secretbox
from certrotate_shared.clock import Clock
from certrotate_shared.settings import ServiceSettings
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.vault import Vault
from orchestrator.adapters import site_locks
from orchestrator.adapters.bundle_tables import uploaded_bundles
from orchestrator.adapters.clients import (
    BundleRejectedError,
    CertificatesClient,
    RegisteredBundle,
    UpstreamUnavailableError,
)
from orchestrator.adapters.orm import idempotency_keys, saga_history
from orchestrator.adapters.repository import ConcurrentUpdateError, SagaRepository, to_db
from orchestrator.domain.history import OperatorActed
from orchestrator.domain.inputs import ActionRejectedError, OperatorAction
from orchestrator.domain.saga import start_saga
from orchestrator.domain.state import (
    AnswerDeadlines,
    CertificateInfo,
    RetryPolicy,
    RotationOptions,
    SagaState,
)
from orchestrator.domain.window import InvalidWindowError, check_window
from orchestrator.service_layer import inventory, retention, site_targets
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import (
    ConflictError,
    ForbiddenError,
    InputRejectedError,
    NotFoundError,
    UpstreamError,
)
from orchestrator.service_layer.transitions import advance, persist
from orchestrator.settings import Settings


@dataclass(frozen=True)
class CertificateUpload:
    """The bundle as uploaded: forwarded to the certificates service, never stored here."""

    format: str
    data_b64: str = field(repr=False)
    password: str | None = field(repr=False)
    key_b64: str | None = field(repr=False)


@dataclass(frozen=True)
class BundleReference:
    """A bundle uploaded before (POST /v1/bundles), named by its id instead of sent inline."""

    bundle_id: str


# What a request may carry as its certificate.
Certificate = CertificateUpload | BundleReference


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


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def request_fingerprint(settings: ServiceSettings, body: dict[str, Any]) -> str:
    """A keyed hash of the request (it holds a password: a plain hash could be brute-forced),
    under the key derived for fingerprints, never the sealing key."""
    return secretbox.request_fingerprint(settings.master_key_bytes(), _canonical(body))


def same_request(settings: ServiceSettings, body: dict[str, Any], stored: str | None) -> bool:
    """Whether a stored fingerprint is this request's, under the current master key, a previous
    one, or the raw key older records were hashed with."""
    accepted = secretbox.fingerprints_accepted(
        settings.master_key_bytes(), settings.previous_master_key_bytes(), _canonical(body)
    )
    return any(hmac.compare_digest(stored or "", f) for f in accepted)


def with_operator_defaults(requested: RotationOptions, settings: Settings) -> RotationOptions:
    """What the request leaves out comes from the operator's settings, not built-in values."""
    defaults = RotationOptions(
        stale_horizon_days=settings.stale_horizon_days,
        max_wait_days=settings.max_wait_days,
        exposure_limit_days=settings.exposure_limit_days,
        retry=RetryPolicy(
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            max_attempts=settings.retry_max_attempts,
        ),
        answer_deadlines=AnswerDeadlines(
            sepm_call_seconds=settings.answer_deadline_sepm_seconds,
            host_operation_seconds=settings.answer_deadline_host_operation_seconds,
            manual_host_operation_seconds=settings.answer_deadline_manual_seconds,
            restore_replication_seconds=settings.answer_deadline_restore_replication_seconds,
            resends=settings.answer_resends,
        ),
        max_reenable_loops=settings.max_reenable_loops,
    )
    return defaults.model_copy(
        update={name: getattr(requested, name) for name in requested.model_fields_set}
    )


def authorize_options(
    options: RotationOptions, *, may_approve: bool, settings: Settings
) -> RotationOptions:
    """Accepting clients at risk up front is the approver's call; settings cap it and can make
    every rotation wait for an approval."""
    budget = options.orphan_risk_budget
    cap = settings.max_orphan_risk_budget
    if cap is not None and budget > cap:
        raise InputRejectedError(
            f"orphan_risk_budget {budget} is above this server's maximum of {cap}",
            code="budget_above_maximum",
        )
    if budget > settings.operator_orphan_risk_budget and not may_approve:
        raise ForbiddenError(
            f"an orphan_risk_budget of {budget} accepts clients being cut off: it needs the "
            f"approver role (an operator may set at most {settings.operator_orphan_risk_budget})",
            code="approver_required",
        )
    if settings.require_approval and not options.require_approval:
        return options.model_copy(update={"require_approval": True})
    return options


async def refuse_self_approval(saga_id: str, approver_token_id: str, *, db: Database) -> None:
    """Four eyes: the token that requested a rotation cannot approve it."""
    async with db() as uow:
        detail = (
            await uow.session.execute(
                select(saga_history.c.detail).where(
                    saga_history.c.saga_id == saga_id,
                    saga_history.c.type == "RotationRequested",
                )
            )
        ).scalar_one_or_none()
    requester = (detail or {}).get("principal") or {}
    if requester.get("token_id") == approver_token_id:
        raise ForbiddenError(
            "the token that requested this rotation cannot approve it; another approver must",
            code="self_approval",
        )


def in_clock_time(options: RotationOptions, speed: float) -> RotationOptions:
    """Answer deadlines are real seconds (workers do not run faster under an accelerated clock,
    as in a rehearsal against the twin); the saga's timers run in clock time."""
    if speed == 1.0:
        return options
    limits = options.answer_deadlines
    scaled = limits.model_copy(
        update={
            "sepm_call_seconds": limits.sepm_call_seconds * speed,
            "host_operation_seconds": limits.host_operation_seconds * speed,
            "manual_host_operation_seconds": limits.manual_host_operation_seconds * speed,
            "restore_replication_seconds": limits.restore_replication_seconds * speed,
        }
    )
    return options.model_copy(update={"answer_deadlines": scaled})


async def create_rotation(
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
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
        target = await inventory.site_target(uow.session, site)
        farm = await inventory.replication_farm(uow.session, site)
        # Refuse early (before the upload goes anywhere); the lock rows below decide races.
        if admit is None:
            _refuse_if_busy(site, farm, await site_locks.holders(uow.session, farm))
    if bundle is None:
        assert upload is not None, "a rotation needs an upload or a pre-flighted bundle"
        bundle = await preflight(
            site, upload, site_hostnames(target),
            db=db, clock=clock, settings=settings, certificates=certificates,
        )  # fmt: skip
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
                uow.session, vault, site, also_trusted=trusted
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
    alarm.ring()
    # However long it waits before the swap, its certificate must still be there.
    await retention.hold_now(certificates, [certificate.bundle_ref])
    return decision.state, True


async def preflight(
    site: str,
    upload: Certificate,
    hostnames: list[str],
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    certificates: CertificatesClient,
) -> RegisteredBundle:
    """The certificates service validates the upload for these names and keeps it; a bundle
    uploaded before is validated again (for this site, today) and copied for this use."""
    try:
        if isinstance(upload, BundleReference):
            await _require_uploaded(db, clock, upload.bundle_id)
            return await certificates.use_bundle(
                upload.bundle_id,
                {
                    "site": site,
                    "hostnames": hostnames,
                    "min_validity_days": settings.min_validity_days,
                },
            )
        return await certificates.register_bundle(
            {
                "site": site,
                "format": upload.format,
                "data_b64": upload.data_b64,
                "password": upload.password,
                "key_b64": upload.key_b64,
                "hostnames": hostnames,
                "min_validity_days": settings.min_validity_days,
            }
        )
    except BundleRejectedError as exc:
        if exc.code == "bundle_not_found":
            raise _unknown_bundle(upload) from None
        raise InputRejectedError(exc.detail, code=exc.code) from None
    except UpstreamUnavailableError as exc:
        raise UpstreamError(str(exc), code="certificates_unavailable") from None


async def _require_uploaded(db: Database, clock: Clock, bundle_id: str) -> None:
    # Only bundles uploaded through the API may be named: never another rotation's own copy.
    async with db() as uow:
        # An UPDATE answers a CursorResult (it has rowcount); execute() is typed as Result.
        used = cast(
            CursorResult[Any],
            await uow.session.execute(
                update(uploaded_bundles)
                .where(uploaded_bundles.c.id == bundle_id)
                .values(last_used_at=to_db(clock.now()))
            ),
        )
        await uow.commit()
    if not used.rowcount:
        raise _unknown_bundle(BundleReference(bundle_id))


def _unknown_bundle(reference: Certificate) -> InputRejectedError:
    name = reference.bundle_id if isinstance(reference, BundleReference) else "?"
    return InputRejectedError(
        f"no bundle {name!r} (never uploaded, or purged after its retention period): upload "
        "it with POST /v1/bundles",
        code="unknown_bundle",
    )


def site_hostnames(target: Any) -> list[str]:
    """Clients reach SEPM by these names; the address is how certrotate reaches the host."""
    return sorted(
        {name for server in target.servers for name in (server.hostnames or [server.address])}
    )


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


async def get_rotation(saga_id: str, *, db: Database) -> SagaState:
    async with db() as uow:
        loaded = await SagaRepository(uow.session).get(saga_id)
    if loaded is None:
        raise NotFoundError(f"no rotation {saga_id!r}")
    return loaded[0]


async def act(
    saga_id: str,
    action: OperatorAction,
    *,
    db: Database,
    clock: Clock,
    alarm: TimerAlarm,
    detail: dict[str, Any] | None = None,
) -> SagaState:
    """Apply an operator action; 409 when it makes no sense in the rotation's state."""
    for _ in range(5):
        try:
            async with db() as uow:
                decision = await advance(uow, saga_id, action, clock.now(), detail=detail)
                if decision is None:
                    raise NotFoundError(f"no rotation {saga_id!r}")
                await uow.commit()
            alarm.ring()
            return decision.state
        except ActionRejectedError as exc:
            raise ConflictError(str(exc), code="action_not_possible") from None
        except ConcurrentUpdateError:
            continue  # an event moved the saga meanwhile: decide again on the new state
    raise ConflictError("the rotation is changing too fast; try again", code="busy")


async def list_rotations(
    *,
    db: Database,
    status: str | None,
    site: str | None,
    cursor: str | None,
    limit: int,
    change_id: str | None = None,
) -> tuple[list[SagaState], str | None]:
    async with db() as uow:
        try:
            return await SagaRepository(uow.session).page(
                status=status, site=site, cursor=cursor, limit=limit, change_id=change_id
            )
        except ValueError as exc:
            raise InputRejectedError(str(exc), code="invalid_cursor") from None
