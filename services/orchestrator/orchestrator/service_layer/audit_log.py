"""The audit log: each admin change is recorded in its own transaction, without secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.audit_tables import audit_log
from orchestrator.adapters.repository import from_db, to_db

# Never recorded, whatever a caller passes: the log is readable and exported.
_SECRET_KEYS = frozenset({"password", "secret", "token", "sepm_credentials", "host_ops_credentials",
                          "data_b64", "key_b64"})  # fmt: skip


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _SECRET_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction (it is logged only if it happens)."""
    await session.execute(
        insert(audit_log).values(
            at=to_db(now), actor=actor, action=action, target=target,
            detail=_scrub(detail or {}),
        )
    )  # fmt: skip


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": from_db(row.at).isoformat(),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "detail": row.detail,
    }


def _query(*, after: int, action: str | None, actor: str | None) -> Any:
    query = select(audit_log).where(audit_log.c.id > after)
    if action:
        query = query.where(audit_log.c.action.startswith(action))
    if actor:
        query = query.where(audit_log.c.actor == actor)
    return query.order_by(audit_log.c.id)


async def page(
    session: AsyncSession, *, after: int, limit: int, action: str | None, actor: str | None
) -> tuple[list[dict[str, Any]], int | None]:
    rows = (
        await session.execute(_query(after=after, action=action, actor=actor).limit(limit + 1))
    ).all()
    items = [_view(r) for r in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit else None)


async def json_lines(
    session: AsyncSession, *, after: int, action: str | None, actor: str | None, batch: int = 500
) -> AsyncIterator[bytes]:
    """Every entry after `after`, one JSON object a line, read in batches."""
    while True:
        items, _ = await page(session, after=after, limit=batch, action=action, actor=actor)
        for item in items:
            yield (json.dumps(item, separators=(",", ":")) + "\n").encode()
        if len(items) < batch:
            return
        after = items[-1]["id"]


def site_change(body: dict[str, Any]) -> dict[str, Any]:
    """What a site change says, minus its accounts (only whether they were replaced)."""
    detail = {
        k: v for k, v in body.items() if k not in ("sepm_credentials", "host_ops_credentials")
    }
    detail["trusted_certificates_pem"] = len(body.get("trusted_certificates_pem") or [])
    detail["sepm_credentials_replaced"] = body.get("sepm_credentials") is not None
    detail["host_ops_credentials_replaced"] = body.get("host_ops_credentials") is not None
    return detail
