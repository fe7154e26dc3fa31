"""Subscriptions to rotation callbacks (admin), their deliveries, and redelivery."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.vault import Vault
from orchestrator.adapters.callback_sender import resolve_checked
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.adapters.webhook_tables import callback_deliveries, subscriptions
from orchestrator.domain.subscriptions import AddressRefusedError
from orchestrator.domain.webhooks import new_secret
from orchestrator.service_layer.errors import ConflictError, InputRejectedError, NotFoundError
from orchestrator.settings import Settings


def _ref(subscription_id: str) -> str:
    return f"subscription/{subscription_id}"


def _at(value: datetime | None) -> datetime | None:
    return from_db(value) if value is not None else None


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "event_types": list(row.event_types),
        "site": row.site,
        "change_id": row.change_id,
        "description": row.description,
        "created_at": from_db(row.created_at),
        "created_by": row.created_by,
        "may_approve": bool(row.may_approve),
    }


async def check_callback_url(url: str, settings: Settings) -> None:
    """Refuse a URL certrotate must not call (422 url_not_allowed, naming why)."""
    allowed = [ipaddress.ip_network(n, strict=False) for n in settings.callback_allowed_networks]
    try:
        await resolve_checked(url, allowed=allowed, allow_http=settings.callback_allow_http)
    except AddressRefusedError as exc:
        raise InputRejectedError(str(exc), code="url_not_allowed") from None


async def create_subscription(
    session: AsyncSession,
    vault: Vault,
    settings: Settings,
    *,
    url: str,
    event_types: list[str],
    site: str | None,
    change_id: str | None,
    description: str,
    by: str,
    now: datetime,
    may_approve: bool = False,
) -> dict[str, Any]:
    """A subscription and its signing secret; the secret is in this answer only."""
    await check_callback_url(url, settings)
    subscription_id = str(uuid.uuid4())
    secret = new_secret()
    await vault.put(_ref(subscription_id), "subscription_secret", {"secret": secret},
                    f"callbacks to {url}")  # fmt: skip
    await session.execute(
        insert(subscriptions).values(
            id=subscription_id, url=url, event_types=sorted(set(event_types)), site=site,
            change_id=change_id, description=description, vault_ref=_ref(subscription_id),
            created_at=to_db(now), created_by=by, may_approve=may_approve,
        )
    )  # fmt: skip
    return {**await get_subscription(session, subscription_id), "secret": secret}


async def _row(session: AsyncSession, subscription_id: str) -> Any:
    row = (
        await session.execute(select(subscriptions).where(subscriptions.c.id == subscription_id))
    ).first()
    if row is None:
        raise NotFoundError(f"no subscription {subscription_id!r}", code="unknown_subscription")
    return row


async def get_subscription(session: AsyncSession, subscription_id: str) -> dict[str, Any]:
    return _view(await _row(session, subscription_id))


async def list_subscriptions(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(subscriptions).order_by(subscriptions.c.created_at))).all()
    return [_view(r) for r in rows]


async def delete_subscription(session: AsyncSession, vault: Vault, subscription_id: str) -> None:
    """Pending callbacks of a deleted subscription are marked failed by the delivery loop."""
    row = await _row(session, subscription_id)
    await session.execute(delete(subscriptions).where(subscriptions.c.id == subscription_id))
    await vault.delete(row.vault_ref)


def _delivery_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "rotation_id": row.rotation_id,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": from_db(row.created_at),
        "next_attempt_at": _at(row.next_attempt_at) if row.status == "pending" else None,
        "last_attempt_at": _at(row.last_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "response_prefix": row.response_prefix,
        "delivered_at": _at(row.delivered_at),
        "payload": row.payload,
    }


async def list_deliveries(
    session: AsyncSession, subscription_id: str, *, status: str | None, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    await _row(session, subscription_id)
    query = select(callback_deliveries).where(
        callback_deliveries.c.subscription_id == subscription_id, callback_deliveries.c.id > after
    )
    if status:
        query = query.where(callback_deliveries.c.status == status)
    rows = (await session.execute(query.order_by(callback_deliveries.c.id).limit(limit + 1))).all()
    items = [_delivery_view(r) for r in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit else None)


async def redeliver(
    session: AsyncSession, subscription_id: str, delivery_id: int, *, now: datetime
) -> dict[str, Any]:
    """Send a delivered or failed callback again, with a new retry window (same webhook-id, so
    a receiver that did get it can tell)."""
    await _row(session, subscription_id)
    row = (
        await session.execute(
            select(callback_deliveries).where(
                callback_deliveries.c.id == delivery_id,
                callback_deliveries.c.subscription_id == subscription_id,
            )
        )
    ).first()
    if row is None:
        raise NotFoundError(f"subscription {subscription_id} has no delivery {delivery_id}")
    if row.status == "pending":
        raise ConflictError("this delivery is still being tried", code="delivery_pending")
    await session.execute(
        update(callback_deliveries)
        .where(callback_deliveries.c.id == delivery_id)
        .values(status="pending", window_start=None, next_attempt_at=to_db(now), leased_until=None)
    )
    updated = (
        await session.execute(
            select(callback_deliveries).where(callback_deliveries.c.id == delivery_id)
        )
    ).one()
    return _delivery_view(updated)
