"""Webhook sources (admin) and the rotations their signed deliveries trigger."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from certrotate_shared.clock import Clock
from certrotate_shared.unit_of_work import UnitOfWork
from certrotate_shared.vault import Vault
from orchestrator.adapters import site_locks
from orchestrator.adapters.clients import CertificatesClient
from orchestrator.adapters.orm import sagas, servers
from orchestrator.adapters.repository import SagaRepository, from_db, to_db
from orchestrator.adapters.webhook_tables import (
    rotation_waits,
    webhook_deliveries,
    webhook_secrets,
    webhook_sources,
)
from orchestrator.domain import webhooks as rules
from orchestrator.domain.history import Noted
from orchestrator.domain.inputs import ActionRejectedError, CancelRequested, ResumeRequested
from orchestrator.domain.state import CertificateInfo, RotationOptions, SagaState
from orchestrator.domain.steps import FORWARD
from orchestrator.service_layer import inventory, rotations
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import (
    ConflictError,
    InputRejectedError,
    NotFoundError,
    ServiceError,
)
from orchestrator.service_layer.transitions import advance, record_history
from orchestrator.settings import Settings


class UnauthenticatedError(ServiceError):
    status = 401
    title = "Unauthorized"


def _secret_ref(source: str, secret_id: str) -> str:
    return f"webhook-source/{source}/{secret_id}"


# --- sources (admin) ---------------------------------------------------------------------


def _secret_view(row: Any, now: datetime) -> dict[str, Any]:
    expires = from_db(row.expires_at) if row.expires_at else None
    return {
        "id": row.id,
        "created_at": from_db(row.created_at),
        "expires_at": expires,
        "active": rules.secret_active(expires, now),
    }


async def _source_view(session: AsyncSession, row: Any, now: datetime) -> dict[str, Any]:
    secret_rows = (
        await session.execute(
            select(webhook_secrets)
            .where(webhook_secrets.c.source == row.name)
            .order_by(webhook_secrets.c.created_at)
        )
    ).all()
    return {
        "name": row.name,
        "description": row.description,
        "created_at": from_db(row.created_at),
        "created_by": row.created_by,
        "secrets": [_secret_view(s, now) for s in secret_rows],
        "url": f"/v1/webhooks/{row.name}",
    }


async def _new_secret(
    session: AsyncSession, vault: Vault, source: str, now: datetime
) -> dict[str, Any]:
    secret_id = str(uuid.uuid4())
    secret = rules.new_secret()
    ref = _secret_ref(source, secret_id)
    await vault.put(ref, "webhook_secret", {"secret": secret}, f"webhook source {source}")
    await session.execute(
        insert(webhook_secrets).values(
            id=secret_id, source=source, vault_ref=ref, created_at=to_db(now), expires_at=None
        )
    )
    return {"id": secret_id, "secret": secret, "created_at": now}


async def create_source(
    session: AsyncSession, vault: Vault, *, name: str, description: str, by: str, now: datetime
) -> dict[str, Any]:
    """A new source and its first secret; the secret is in this answer only."""
    if (why := rules.check_source_name(name)) is not None:
        raise InputRejectedError(why, code="invalid_source_name")
    if (await _source_row(session, name)) is not None:
        raise ConflictError(f"a webhook source {name!r} exists already", code="source_exists")
    await session.execute(
        insert(webhook_sources).values(
            name=name, description=description, created_at=to_db(now), created_by=by
        )
    )
    secret = await _new_secret(session, vault, name, now)
    view = await _source_view(session, await _source_row(session, name), now)
    return {**view, "secret": secret}


async def roll_secret(
    session: AsyncSession, vault: Vault, name: str, *, keep_old_hours: float, now: datetime
) -> dict[str, Any]:
    """A new secret; the active ones stay valid `keep_old_hours` more (0: revoked now)."""
    row = await _require_source(session, name)
    until = now + timedelta(hours=keep_old_hours)
    await session.execute(
        update(webhook_secrets)
        .where(
            webhook_secrets.c.source == name,
            (webhook_secrets.c.expires_at.is_(None))
            | (webhook_secrets.c.expires_at > to_db(until)),
        )
        .values(expires_at=to_db(until))
    )
    secret = await _new_secret(session, vault, name, now)
    return {**await _source_view(session, row, now), "secret": secret}


async def revoke_secret(
    session: AsyncSession, vault: Vault, name: str, secret_id: str, *, now: datetime
) -> None:
    await _require_source(session, name)
    row = (
        await session.execute(
            select(webhook_secrets).where(
                webhook_secrets.c.source == name, webhook_secrets.c.id == secret_id
            )
        )
    ).first()
    if row is None:
        raise NotFoundError(f"source {name!r} has no secret {secret_id!r}")
    await session.execute(delete(webhook_secrets).where(webhook_secrets.c.id == secret_id))
    await vault.delete(row.vault_ref)


async def list_sources(session: AsyncSession, *, now: datetime) -> list[dict[str, Any]]:
    rows = (await session.execute(select(webhook_sources).order_by(webhook_sources.c.name))).all()
    return [await _source_view(session, r, now) for r in rows]


async def get_source(session: AsyncSession, name: str, *, now: datetime) -> dict[str, Any]:
    return await _source_view(session, await _require_source(session, name), now)


async def delete_source(session: AsyncSession, vault: Vault, name: str) -> None:
    await _require_source(session, name)
    refs = (
        await session.execute(
            select(webhook_secrets.c.vault_ref).where(webhook_secrets.c.source == name)
        )
    ).scalars()
    for ref in list(refs):
        await vault.delete(ref)
    await session.execute(delete(webhook_secrets).where(webhook_secrets.c.source == name))
    await session.execute(delete(webhook_sources).where(webhook_sources.c.name == name))


async def _source_row(session: AsyncSession, name: str) -> Any:
    return (
        await session.execute(select(webhook_sources).where(webhook_sources.c.name == name))
    ).first()


async def _require_source(session: AsyncSession, name: str) -> Any:
    row = await _source_row(session, name)
    if row is None:
        raise NotFoundError(
            f"no webhook source {name!r}; an admin registers it with "
            "`certrotate webhooks sources add`",
            code="unknown_source",
        )
    return row


# --- deliveries (inbound) ----------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """A verified delivery's payload, as the API parsed it."""

    site: str | None
    servers: list[str]
    upload: rotations.Certificate
    options: RotationOptions
    change_id: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def wall_clock_now() -> datetime:
    return datetime.now(UTC)


async def verify(
    source: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    db: Database,
    clock: Clock,
    vault: Vault,
    wall_clock: Callable[[], datetime] = wall_clock_now,
) -> str:
    """The delivery's webhook-id once the source is known, the timestamp fresh and the
    signature made by one of the source's active secrets.

    The timestamp is checked against the wall clock, not the orchestrator's (maybe accelerated)
    clock: it is the sender's wall clock that wrote it."""
    now = clock.now()
    async with db() as uow:
        await _require_source(uow.session, source)
        refs = [
            r.vault_ref
            for r in (
                await uow.session.execute(
                    select(webhook_secrets).where(webhook_secrets.c.source == source)
                )
            ).all()
            if rules.secret_active(from_db(r.expires_at) if r.expires_at else None, now)
        ]
    secrets = [(await vault.get(ref))["secret"] for ref in refs]
    return check_signature(body, headers, secrets, wall_clock(), whose=f"source {source!r}")


def check_signature(
    body: bytes, headers: Mapping[str, str], secrets: list[str], now: datetime, *, whose: str
) -> str:
    """The webhook-id of a delivery with a fresh timestamp signed by one of `secrets`
    (Standard Webhooks, verified by the reference library); 401 otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id", "")
    if not webhook_id or not lowered.get("webhook-signature") or len(webhook_id) > 200:
        raise UnauthenticatedError(
            "send the Standard Webhooks headers webhook-id, webhook-timestamp and "
            "webhook-signature",
            code="signature_missing",
        )
    try:
        rules.check_timestamp(lowered.get("webhook-timestamp"), now)
    except rules.StaleTimestampError as exc:
        raise UnauthenticatedError(str(exc), code="stale_timestamp") from None
    for secret in secrets:
        try:
            Webhook(secret).verify(body, dict(lowered), json_parse=False)
            return webhook_id
        except (WebhookVerificationError, ValueError):
            continue
    raise UnauthenticatedError(
        f"the signature matches no active secret of {whose}", code="bad_signature"
    )


async def replayed(source: str, webhook_id: str, body: bytes, *, db: Database) -> Answer | None:
    """The answer a delivery with this webhook-id got before, if it was accepted."""
    async with db() as uow:
        row = (
            await uow.session.execute(
                select(webhook_deliveries).where(
                    webhook_deliveries.c.source == source,
                    webhook_deliveries.c.webhook_id == webhook_id,
                )
            )
        ).first()
    if row is None:
        return None
    if row.body_sha256 != body_digest(body):
        raise ConflictError(
            f"webhook-id {webhook_id!r} was delivered before with another body; a new "
            "message needs a new webhook-id",
            code="webhook_id_reused",
        )
    return Answer(row.status_code, dict(row.answer))


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def resolve_site(trigger: Trigger, *, db: Database) -> str:
    """The one site the trigger names, directly or through its management servers."""
    if trigger.site is not None:
        return trigger.site
    async with db() as uow:
        rows = (
            await uow.session.execute(
                select(servers.c.name, servers.c.site).where(servers.c.name.in_(trigger.servers))
            )
        ).all()
    unknown = sorted(set(trigger.servers) - {r.name for r in rows})
    if unknown:
        raise InputRejectedError(
            f"unknown management servers: {', '.join(unknown)}", code="unknown_server"
        )
    found = sorted({r.site for r in rows})
    if len(found) != 1:
        raise InputRejectedError(
            f"the servers belong to several sites ({', '.join(found)}); send one trigger per site",
            code="several_sites",
        )
    return found[0]


async def trigger_rotation(
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
    source: str,
    webhook_id: str,
    body: bytes,
    trigger: Trigger,
) -> Answer:
    """Start (or find, or supersede for) the rotation a verified delivery asks for."""
    site = await resolve_site(trigger, db=db)
    actor = f"webhook:{source}"
    seen: dict[str, Any] = {}

    async def admit(uow: UnitOfWork, saga_id: str, cert: CertificateInfo) -> rotations.Admission:
        seen["bundle_ref"] = cert.bundle_ref
        verdict = rules.judge_trigger(cert.fingerprint_sha256, await _site_rotations(uow, site))
        if verdict.action == "refuse":
            raise ConflictError(
                f"site {site!r} is busy: rotation {verdict.rotation_id} has begun the swap and "
                "can only go forward; send the certificate again once it has ended",
                code="site_busy",
                rotation_id=verdict.rotation_id,
            )
        now = clock.now()
        if verdict.action == "duplicate":
            assert verdict.rotation_id is not None
            loaded = await SagaRepository(uow.session).get(verdict.rotation_id)
            assert loaded is not None
            seen["answer"] = _answer(200, "duplicate", loaded[0].saga_id, site,
                                     loaded[0].change_id, loaded[0].certificate.fingerprint_sha256)  # fmt: skip
            await _store(uow.session, source, webhook_id, body, now, seen["answer"])
            return rotations.Admission(existing=loaded[0])
        hold = None
        if verdict.action == "supersede":
            hold = await _supersede(uow, verdict, saga_id, actor, now)
        seen["answer"] = _answer(
            201, "superseded" if hold else "started", saga_id, site, trigger.change_id,
            cert.fingerprint_sha256, superseded=verdict.rotation_id if hold else None,
        )  # fmt: skip
        # In the creating transaction: a racing delivery with the same id finds this answer.
        await _store(uow.session, source, webhook_id, body, now, seen["answer"])
        return rotations.Admission(hold_reason=hold, lock=hold is None)

    try:
        await rotations.create_rotation(
            db=db,
            clock=clock,
            settings=settings,
            vault=vault,
            certificates=certificates,
            alarm=alarm,
            site=site,
            upload=trigger.upload,
            options=rotations.with_operator_defaults(trigger.options, settings),
            change_id=trigger.change_id,
            requested_by=actor,
            idempotency_key=None,
            body={},
            admit=admit,
        )
    except (IntegrityError, ConflictError):
        # The same webhook-id raced this one to its first answer: give that answer.
        await _discard_bundle(certificates, seen.get("bundle_ref"))
        again = await replayed(source, webhook_id, body, db=db)
        if again is None:
            raise
        return again
    answer: Answer = seen["answer"]
    if answer.body["outcome"] == "duplicate":
        await _discard_bundle(certificates, seen.get("bundle_ref"))
    return answer


async def _discard_bundle(certificates: CertificatesClient, ref: str | None) -> None:
    if ref:
        await certificates.discard_bundle(ref)


def _answer(
    status: int,
    outcome: str,
    rotation_id: str,
    site: str,
    change_id: str | None,
    fingerprint: str,
    *,
    superseded: str | None = None,
) -> Answer:
    body = {
        "outcome": outcome,
        "rotation_id": rotation_id,
        "site": site,
        "change_id": change_id,
        "certificate_fingerprint_sha256": fingerprint,
        "superseded_rotation_id": superseded,
        "rotation_url": f"/v1/rotations/{rotation_id}",
    }
    return Answer(status, body)


async def _store(
    session: AsyncSession, source: str, webhook_id: str, body: bytes, now: datetime, answer: Answer
) -> None:
    await session.execute(
        insert(webhook_deliveries).values(
            source=source, webhook_id=webhook_id, body_sha256=body_digest(body),
            received_at=to_db(now), status_code=answer.status, answer=answer.body,
            rotation_id=answer.body["rotation_id"],
        )
    )  # fmt: skip


async def _site_rotations(uow: UnitOfWork, site: str) -> list[rules.SiteRotation]:
    rows = (
        await uow.session.execute(
            select(sagas.c.saga_id, sagas.c.status, sagas.c.state, sagas.c.created_at).where(
                sagas.c.site == site,
                sagas.c.status.in_(["running", "compensating", "paused", "completed"]),
            )
        )
    ).all()
    found = []
    for r in rows:
        state = r.state if isinstance(r.state, dict) else json.loads(r.state)
        found.append(
            rules.SiteRotation(
                rotation_id=r.saga_id,
                fingerprint_sha256=state["certificate"]["fingerprint_sha256"],
                status=r.status,
                swap_started=bool(state.get("swap_started")),
                created_at=from_db(r.created_at),
            )
        )
    return found


async def _supersede(
    uow: UnitOfWork, verdict: rules.TriggerVerdict, saga_id: str, actor: str, now: datetime
) -> str:
    """Cancel the rotation being superseded (it compensates), and have the new one wait until
    every rotation of the site has ended: two rotations must never change one site at once."""
    if verdict.rotation_id is not None:
        try:
            await advance(
                uow,
                verdict.rotation_id,
                CancelRequested(by=actor, reason=f"superseded by rotation {saga_id}"),
                now,
            )
        except ActionRejectedError as exc:
            raise ConflictError(
                f"rotation {verdict.rotation_id} cannot be superseded: {exc}",
                code="site_busy",
                rotation_id=verdict.rotation_id,
            ) from None
    await uow.session.execute(
        insert(rotation_waits),
        [{"rotation_id": saga_id, "blocker_id": b} for b in verdict.wait_for],
    )
    return f"waits for {', '.join(verdict.wait_for)} to end (superseded by a newer certificate)"


async def release_waiting(uow: UnitOfWork, ended: SagaState) -> None:
    """A rotation ended: start the rotations that waited only for it. After a failure that
    may have left the site changed they stay held: a person must look first."""
    waiting = (
        await uow.session.execute(
            select(rotation_waits.c.rotation_id).where(rotation_waits.c.blocker_id == ended.saga_id)
        )
    ).scalars()
    waiting_ids = list(waiting)
    if not waiting_ids:
        return
    await uow.session.execute(
        delete(rotation_waits).where(rotation_waits.c.blocker_id == ended.saga_id)
    )
    changed = ended.status == "failed" and (
        ended.verification_touched or bool(ended.broken_partners) or ended.swap_started
    )
    for rotation_id in waiting_ids:
        others = (
            await uow.session.execute(
                select(rotation_waits.c.blocker_id).where(
                    rotation_waits.c.rotation_id == rotation_id
                )
            )
        ).first()
        if others is not None:
            continue
        if changed:
            _note(uow, rotation_id, ended, f"not started: rotation {ended.saga_id} failed and "
                  "may have left the site changed; resume once the site is checked")  # fmt: skip
            continue
        loaded = await SagaRepository(uow.session).get(rotation_id)
        if loaded is None or loaded[0].terminal:
            continue  # cancelled meanwhile: nothing to start
        farm = await inventory.replication_farm(uow.session, loaded[0].site)
        held = await site_locks.holders(uow.session, farm)
        if held:
            _note(uow, rotation_id, ended, f"not started: the site is held by rotation "
                  f"{sorted(held.values())[0]}; resume it once that one has ended")  # fmt: skip
            continue
        await site_locks.acquire(uow.session, farm, rotation_id, ended.updated_at)
        try:
            await advance(uow, rotation_id, ResumeRequested(by="webhook"), ended.updated_at,
                          loaded=loaded)  # fmt: skip
        except ActionRejectedError:
            continue  # resumed by an operator meanwhile


def _note(uow: UnitOfWork, rotation_id: str, ended: SagaState, text: str) -> None:
    # The waiting rotation is still held at its first step (it was never started).
    record_history(uow, rotation_id, [Noted(at=ended.updated_at, step=FORWARD[0].name, text=text)])
