"""Webhook sources (admin): the senders allowed to trigger rotations, and their signing
secrets (kept in the vault, shown once, rolled with an overlap)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.vault import Vault
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.adapters.webhook_tables import webhook_secrets, webhook_sources
from orchestrator.domain import webhooks as rules
from orchestrator.service_layer.errors import ConflictError, InputRejectedError, NotFoundError


def _secret_ref(source: str, secret_id: str) -> str:
    return f"webhook-source/{source}/{secret_id}"


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
    row = await require_source(session, name)
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
    await require_source(session, name)
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
    return await _source_view(session, await require_source(session, name), now)


async def delete_source(session: AsyncSession, vault: Vault, name: str) -> None:
    await require_source(session, name)
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


async def require_source(session: AsyncSession, name: str) -> Any:
    row = await _source_row(session, name)
    if row is None:
        raise NotFoundError(
            f"no webhook source {name!r}; an admin registers it with "
            "`certrotate webhooks sources add`",
            code="unknown_source",
        )
    return row
