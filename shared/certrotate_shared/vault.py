"""The vault: the one place secrets live (SEPM accounts, WinRM accounts), sealed at rest.

Messages carry only a vault reference; the orchestrator writes entries from the inventory API
and workers read them when they connect. Values never leave through logs or API responses.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared.db import is_postgres, make_engine
from certrotate_shared.envelope import utcnow
from certrotate_shared.migrations import migrate, vault_chain
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.tables import vault_secrets


class SecretNotFoundError(KeyError):
    """No secret is stored under that reference."""


class Vault:
    def __init__(self, url: str, master_key: bytes, *, schema: str = "vault") -> None:
        self._url = url
        self._schema = schema
        self._box = SecretBox(master_key)
        self._engine: AsyncEngine | None = None

    async def start(self) -> None:
        await migrate(self._url, self._schema, [vault_chain()])
        self._engine = (
            make_engine(self._url, self._schema, pool_size=2, max_overflow=2)
            if (is_postgres(self._url))
            else make_engine(self._url, self._schema)
        )

    async def stop(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "vault not started"
        return self._engine

    async def put(self, ref: str, kind: str, secret: dict[str, Any], description: str = "") -> None:
        """Store (or replace) a secret under a reference."""
        values = {
            "kind": kind,
            "sealed": self._box.seal(json.dumps(secret).encode(), ref),
            "description": description,
            "updated_at": utcnow(),
        }
        insert = pg_insert if is_postgres(self._url) else sqlite_insert
        stmt = insert(vault_secrets).values(ref=ref, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[vault_secrets.c.ref], set_=values)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def get(self, ref: str) -> dict[str, Any]:
        """The secret stored under a reference."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(vault_secrets.c.sealed).where(vault_secrets.c.ref == ref))
            ).first()
        if row is None:
            raise SecretNotFoundError(f"no secret stored under {ref!r}")
        secret: dict[str, Any] = json.loads(self._box.open(bytes(row.sealed), ref))
        return secret

    async def exists(self, ref: str) -> bool:
        async with self.engine.connect() as conn:
            row = await conn.execute(select(vault_secrets.c.ref).where(vault_secrets.c.ref == ref))
            return row.first() is not None

    async def delete(self, ref: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(vault_secrets).where(vault_secrets.c.ref == ref))
