"""The vault: the one place secrets live (SEPM accounts, WinRM accounts), sealed at rest.

Messages carry only a vault reference; the orchestrator writes entries from the inventory API
and workers read them when they connect. Values never leave through logs or API responses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared.db import is_postgres, make_engine
from certrotate_shared.envelope import utcnow
from certrotate_shared.migrations import migrate, vault_chain
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.settings import ServiceSettings
from certrotate_shared.tables import vault_secrets


class SecretNotFoundError(KeyError):
    """No secret is stored under that reference."""


class Vault:
    """Opens itself on first use (a service that never needs a secret never connects), and
    again after stop(), so whoever holds it can stop it without breaking other holders."""

    def __init__(
        self,
        url: str,
        master_key: bytes,
        *,
        schema: str = "vault",
        previous_keys: Sequence[bytes] = (),
    ) -> None:
        self._url = url
        self._schema = schema
        self._box = SecretBox(master_key, previous_keys)
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Vault:
        """The vault every service shares, as its settings locate it."""
        return cls(
            settings.vault_url,
            settings.master_key_bytes(),
            schema=settings.vault_schema,
            previous_keys=settings.previous_master_key_bytes(),
        )

    async def start(self) -> None:
        async with self._opening:
            if self._engine is None:
                await migrate(self._url, self._schema, [vault_chain()])
                small_pool = {"pool_size": 2, "max_overflow": 2} if is_postgres(self._url) else {}
                self._engine = make_engine(self._url, self._schema, **small_pool)

    async def stop(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def _ready(self) -> AsyncEngine:
        if self._engine is None:
            await self.start()
        assert self._engine is not None
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
        async with (await self._ready()).begin() as conn:
            await conn.execute(stmt)

    async def get(self, ref: str) -> dict[str, Any]:
        """The secret stored under a reference."""
        async with (await self._ready()).connect() as conn:
            row = (
                await conn.execute(select(vault_secrets.c.sealed).where(vault_secrets.c.ref == ref))
            ).first()
        if row is None:
            raise SecretNotFoundError(f"no secret stored under {ref!r}")
        secret: dict[str, Any] = json.loads(self._box.open(bytes(row.sealed), ref))
        return secret

    async def exists(self, ref: str) -> bool:
        async with (await self._ready()).connect() as conn:
            row = await conn.execute(select(vault_secrets.c.ref).where(vault_secrets.c.ref == ref))
            return row.first() is not None

    async def rekey(self) -> int:
        """Seal every entry again under the current master key (after a key rotation, so the
        previous key can be dropped); returns how many were re-sealed. Safe to repeat."""
        done = 0
        async with (await self._ready()).begin() as conn:
            rows = (await conn.execute(select(vault_secrets.c.ref, vault_secrets.c.sealed))).all()
            for row in rows:
                sealed = bytes(row.sealed)
                if self._box.sealed_by_current(sealed):
                    continue
                again = self._box.seal(self._box.open(sealed, row.ref), row.ref)
                await conn.execute(
                    update(vault_secrets).where(vault_secrets.c.ref == row.ref).values(sealed=again)
                )
                done += 1
        return done

    async def delete(self, ref: str) -> None:
        async with (await self._ready()).begin() as conn:
            await conn.execute(delete(vault_secrets).where(vault_secrets.c.ref == ref))
