"""Signed replies from an ITSM tool: it approves a rotation it was told awaits approval.

The reply is signed with the subscription's own secret (Standard Webhooks), so only the tool
that receives the callbacks can answer them, and only where an admin allowed it. The approver's
identity and the change record go into the rotation's history."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from certrotate_shared.clock import Clock
from certrotate_shared.vault import Vault
from orchestrator.adapters.repository import to_db
from orchestrator.adapters.webhook_tables import subscriptions, webhook_deliveries
from orchestrator.domain.inputs import ApprovalGiven
from orchestrator.service_layer import rotation_actions
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import ConflictError, NotFoundError, ServiceError
from orchestrator.service_layer.webhook_deliveries import (
    Answer,
    body_digest,
    check_signature,
    replayed,
    wall_clock_now,
)


class ForbiddenError(ServiceError):
    status = 403
    title = "Forbidden"


@dataclass(frozen=True)
class Reply:
    rotation_id: str
    approver: str
    change_id: str
    note: str


def _source(subscription_id: str) -> str:
    # Replies share the table of deliveries received, under their own "source".
    return f"subscription:{subscription_id}"


async def verify_reply(
    subscription_id: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    db: Database,
    vault: Vault,
    wall_clock: Callable[[], datetime] = wall_clock_now,
) -> tuple[str, Any]:
    """(webhook-id, subscription) of a reply signed with the subscription's secret."""
    async with db() as uow:
        sub = (
            await uow.session.execute(
                select(subscriptions).where(subscriptions.c.id == subscription_id)
            )
        ).first()
    if sub is None:
        raise NotFoundError(f"no subscription {subscription_id!r}", code="unknown_subscription")
    secret = (await vault.get(sub.vault_ref))["secret"]
    webhook_id = check_signature(
        body, headers, [secret], wall_clock(), whose=f"subscription {subscription_id}"
    )
    return webhook_id, sub


async def answer_reply(
    sub: Any,
    webhook_id: str,
    body: bytes,
    reply: Reply,
    *,
    db: Database,
    clock: Clock,
    alarm: TimerAlarm,
) -> Answer:
    """Apply an approval reply once; the same webhook-id gets the same answer again."""
    source = _source(sub.id)
    again = await replayed(source, webhook_id, body, db=db)
    if again is not None:
        return again
    if not sub.may_approve:
        raise ForbiddenError(
            "this subscription may not approve rotations; an admin allows it with "
            "may_approve when subscribing",
            code="replies_not_allowed",
        )
    state = await rotation_actions.get_rotation(reply.rotation_id, db=db)
    if (sub.site and sub.site != state.site) or (
        sub.change_id and sub.change_id != state.change_id
    ):
        raise ForbiddenError(
            f"rotation {reply.rotation_id} is outside this subscription's filter",
            code="outside_subscription",
        )
    if state.change_id != reply.change_id:
        raise ConflictError(
            f"rotation {reply.rotation_id} belongs to change {state.change_id!r}, not "
            f"{reply.change_id!r}",
            code="change_mismatch",
        )
    action = ApprovalGiven(by=reply.approver, note=reply.note)
    detail = {"change_id": reply.change_id, "via": f"signed reply to subscription {sub.id}"}
    await rotation_actions.act(
        reply.rotation_id, action, db=db, clock=clock, alarm=alarm, detail=detail
    )
    answer = Answer(
        200,
        {"outcome": "approved", "rotation_id": reply.rotation_id, "approver": reply.approver,
         "change_id": reply.change_id},
    )  # fmt: skip
    async with db() as uow:
        await uow.session.execute(
            insert(webhook_deliveries).values(
                source=source, webhook_id=webhook_id, body_sha256=body_digest(body),
                received_at=to_db(clock.now()), status_code=answer.status, answer=answer.body,
                rotation_id=reply.rotation_id,
            )
        )  # fmt: skip
        await uow.commit()
    return answer
