"""The rotations signed webhook deliveries trigger: a site's new certificate starts one,
finds the one already rolling it out, or supersedes one that has not begun the swap."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters.clients import CertificatesClient
from orchestrator.adapters.orm import sagas, servers
from orchestrator.adapters.repository import SagaRepository, from_db
from orchestrator.domain import webhooks as rules
from orchestrator.domain.state import CertificateInfo, RotationOptions
from orchestrator.service_layer import rotations
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import ConflictError, InputRejectedError
from orchestrator.service_layer.preflight import Certificate
from orchestrator.service_layer.rotation_options import with_operator_defaults
from orchestrator.service_layer.supersession import supersede
from orchestrator.service_layer.webhook_deliveries import Answer, replayed, store_answer


@dataclass(frozen=True)
class Trigger:
    """A verified delivery's payload, as the API parsed it."""

    site: str | None
    servers: list[str]
    upload: Certificate
    options: RotationOptions
    change_id: str | None


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
    starter: rotations.RotationStarter,
    source: str,
    webhook_id: str,
    body: bytes,
    trigger: Trigger,
) -> Answer:
    """Start (or find, or supersede for) the rotation a verified delivery asks for."""
    db, clock, certificates = starter.db, starter.clock, starter.certificates
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
            await store_answer(uow.session, source, webhook_id, body, now, seen["answer"])
            return rotations.Admission(existing=loaded[0])
        hold = None
        if verdict.action == "supersede":
            hold = await supersede(uow, verdict, saga_id, actor, now)
        seen["answer"] = _answer(
            201, "superseded" if hold else "started", saga_id, site, trigger.change_id,
            cert.fingerprint_sha256, superseded=verdict.rotation_id if hold else None,
        )  # fmt: skip
        # In the creating transaction: a racing delivery with the same id finds this answer.
        await store_answer(uow.session, source, webhook_id, body, now, seen["answer"])
        return rotations.Admission(hold_reason=hold, lock=hold is None)

    try:
        await starter.start(
            site=site,
            upload=trigger.upload,
            options=with_operator_defaults(trigger.options, starter.settings),
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
