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
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import api_tokens
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.service_layer.errors import ConflictError, NotFoundError

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

    def record(self) -> dict[str, str]:
        """Who acted, as the history keeps it."""
        return {"token_id": self.id, "name": self.name, "role": self.role}

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(session: AsyncSession, token: str, *, admin_token: str) -> Principal | None:
    if hmac.compare_digest(token_hash(token), token_hash(admin_token)):
        return Principal(name="admin", role="admin")
    row = (
        await session.execute(
            select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role).where(
                api_tokens.c.token_hash == token_hash(token), api_tokens.c.revoked_at.is_(None)
            )
        )
    ).first()
    return Principal(name=row.name, role=row.role, id=row.id) if row else None


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": from_db(row.created_at),
        "created_by": row.created_by,
        "revoked_at": from_db(row.revoked_at) if row.revoked_at else None,
    }


async def create_token(
    session: AsyncSession, *, name: str, role: Role, by: str, now: datetime
) -> dict[str, Any]:
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
    await session.execute(
        api_tokens.insert().values(
            id=token_id, name=name, role=role, token_hash=token_hash(token),
            created_at=to_db(now), created_by=by,
        )
    )  # fmt: skip
    row = (await session.execute(select(api_tokens).where(api_tokens.c.id == token_id))).one()
    return {**_view(row), "token": token}


async def list_tokens(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(api_tokens).order_by(api_tokens.c.created_at))).all()
    return [_view(r) for r in rows]


async def revoke_token(session: AsyncSession, token_id: str, *, now: datetime) -> None:
    result = await session.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=to_db(now))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFoundError(f"no token with id {token_id!r}")
