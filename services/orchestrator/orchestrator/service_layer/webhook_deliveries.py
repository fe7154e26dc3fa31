"""Signed deliveries (Standard Webhooks) from a source or a subscriber's reply: who signed
them, whether the timestamp is fresh, and the answer a delivery got, kept under its
webhook-id so that a retried delivery gets the same answer again."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from certrotate_shared.clock import Clock
from certrotate_shared.vault import Vault
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.adapters.webhook_tables import webhook_deliveries, webhook_secrets
from orchestrator.domain import webhooks as rules
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import ConflictError, ServiceError
from orchestrator.service_layer.webhook_sources import require_source


class UnauthenticatedError(ServiceError):
    status = 401
    title = "Unauthorized"


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
        await require_source(uow.session, source)
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


async def store_answer(
    session: AsyncSession, source: str, webhook_id: str, body: bytes, now: datetime, answer: Answer
) -> None:
    await session.execute(
        insert(webhook_deliveries).values(
            source=source, webhook_id=webhook_id, body_sha256=body_digest(body),
            received_at=to_db(now), status_code=answer.status, answer=answer.body,
            rotation_id=answer.body["rotation_id"],
        )
    )  # fmt: skip
