"""API tokens: random, shown once, stored as SHA-256; the first admin token comes from settings."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import api_tokens
from orchestrator.adapters.paging import Key, moment
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.service_layer.errors import ConflictError, InputRejectedError, NotFoundError
from orchestrator.service_layer.paging import page

Role = Literal["viewer", "operator", "approver", "admin"]
# Each role may do everything the roles before it may.
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver", "admin")


# The settings' bootstrap token has no row; this id names it in the history.
BOOTSTRAP_ID = "bootstrap-admin"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    # The token's id: names can repeat over time, ids do not (self-approval compares these).
    id: str = BOOTSTRAP_ID
    # When the token stops working (the saga clock); None: never. Checked on every request.
    expires_at: datetime | None = None

    def record(self) -> dict[str, str]:
        """Who acted, as the history keeps it."""
        return {"token_id": self.id, "name": self.name, "role": self.role}

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(
    session: AsyncSession, token: str, *, admin_token: str, now: datetime
) -> Principal | None:
    """Who the token is; None when it is unknown, revoked or expired."""
    if hmac.compare_digest(token_hash(token), token_hash(admin_token)):
        if await _bootstrap_revoked(session, admin_token):
            return None
        return Principal(name="admin", role="admin")
    row = (
        await session.execute(
            select(
                api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.expires_at
            ).where(
                api_tokens.c.token_hash == token_hash(token),
                api_tokens.c.revoked_at.is_(None),
            )
        )
    ).first()
    expires_at = from_db(row.expires_at) if row is not None and row.expires_at else None
    if row is None or (expires_at is not None and expires_at <= now):
        return None
    return Principal(name=row.name, role=row.role, id=row.id, expires_at=expires_at)


def _bootstrap_row_id(admin_token: str) -> str:
    # One row per bootstrap token ever revoked: a new token in the settings works again (the
    # way back in when every admin token is lost).
    return f"{BOOTSTRAP_ID}-{token_hash(admin_token)[:12]}"


async def _bootstrap_revoked(session: AsyncSession, admin_token: str) -> bool:
    found = await session.execute(
        select(api_tokens.c.id).where(api_tokens.c.id == _bootstrap_row_id(admin_token))
    )
    return found.first() is not None


async def revoke_bootstrap(
    session: AsyncSession, *, admin_token: str, by: str, now: datetime
) -> None:
    """Refuse the settings' admin token from now on. Only once another admin token is live:
    revoking the last way in would leave nobody able to manage tokens."""
    others = (
        await session.execute(
            select(api_tokens.c.id).where(
                api_tokens.c.role == "admin",
                api_tokens.c.revoked_at.is_(None),
                (api_tokens.c.expires_at.is_(None)) | (api_tokens.c.expires_at > to_db(now)),
            )
        )
    ).first()
    if others is None:
        raise ConflictError(
            "create another admin token first: revoking the bootstrap token would leave no "
            "admin able to manage tokens",
            code="last_admin_token",
        )
    if await _bootstrap_revoked(session, admin_token):
        return
    row_id = _bootstrap_row_id(admin_token)
    await session.execute(
        api_tokens.insert().values(
            id=row_id, name=row_id, role="admin", token_hash=token_hash(admin_token),
            created_at=to_db(now), created_by=by, revoked_at=to_db(now),
        )
    )  # fmt: skip


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": from_db(row.created_at),
        "created_by": row.created_by,
        "revoked_at": from_db(row.revoked_at) if row.revoked_at else None,
        "expires_at": from_db(row.expires_at) if row.expires_at else None,
    }


async def create_token(
    session: AsyncSession,
    *,
    name: str,
    role: Role,
    by: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    if expires_at is not None and expires_at <= now:
        raise InputRejectedError(
            f"expires_at ({expires_at.isoformat()}) is not in the future", code="expiry_in_past"
        )
    taken = (
        await session.execute(
            select(api_tokens.c.id).where(
                api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None)
            )
        )
    ).first()
    if taken is not None:
        # The history and the audit log name tokens: two live tokens must not share a name.
        raise ConflictError(
            f"a token named {name!r} exists (id {taken.id}); revoke it or choose another name",
            code="token_name_taken",
        )
    token = "crt_" + secrets.token_urlsafe(32)
    token_id = str(uuid.uuid4())
    try:
        async with session.begin_nested():
            await session.execute(
                api_tokens.insert().values(
                    id=token_id, name=name, role=role, token_hash=token_hash(token),
                    created_at=to_db(now), created_by=by,
                    expires_at=to_db(expires_at) if expires_at else None,
                )
            )  # fmt: skip
    except IntegrityError:
        # Another admin took the name between the check and the insert.
        raise ConflictError(
            f"a token named {name!r} exists; revoke it or choose another name",
            code="token_name_taken",
        ) from None
    row = (await session.execute(select(api_tokens).where(api_tokens.c.id == token_id))).one()
    return {**_view(row), "token": token}


async def list_tokens(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(api_tokens).order_by(api_tokens.c.created_at))).all()
    return [_view(r) for r in rows]


async def page_tokens(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Tokens in the order they were made, `limit` at a time after `cursor`."""
    keys = [moment(api_tokens.c.created_at), Key(api_tokens.c.id)]
    rows, next_cursor = await page(session, select(api_tokens), keys, cursor=cursor, limit=limit)
    return [_view(r) for r in rows], next_cursor


async def revoke_token(
    session: AsyncSession, token_id: str, *, now: datetime, admin_token: str, by: str
) -> None:
    """Revoke a token by id; `bootstrap-admin` names the settings' admin token."""
    if token_id == BOOTSTRAP_ID:
        await revoke_bootstrap(session, admin_token=admin_token, by=by, now=now)
        return
    result = await session.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=to_db(now))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        found = await session.execute(select(api_tokens.c.id).where(api_tokens.c.id == token_id))
        if found.first() is None:
            raise NotFoundError(f"no token with id {token_id!r}")
        # Revoked before: nothing changes (the first revocation's time stays on record).
