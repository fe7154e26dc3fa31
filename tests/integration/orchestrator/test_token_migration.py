"""Migration o0014 on PostgreSQL: live tokens that already share a name (made before the API
refused it) keep working under distinct names, so the new unique index can hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from certrotate_shared.db import make_engine
from orchestrator.adapters.orm import api_tokens
from orchestrator.migrations import SCRIPT_LOCATION, VERSION_TABLE

pytestmark = pytest.mark.integration


def upgrade_to(connection: Any, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    command.upgrade(config, revision)


async def test_live_duplicates_are_renamed_and_revoked_ones_kept(pg_url, pg_schemas):
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    engine = make_engine(pg_url, schema)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def token(name: str, minutes: int, revoked: bool = False) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "name": name, "role": "viewer",
                "token_hash": uuid.uuid4().hex * 2, "created_at": t0 + timedelta(minutes=minutes),
                "created_by": "admin", "revoked_at": t0 if revoked else None}  # fmt: skip

    rows = [token("ci-bot", 1), token("ci-bot", 2), token("ci-bot", 0, revoked=True),
            token("itsm", 3)]  # fmt: skip
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(upgrade_to, "o0013")
            # The table as o0013 left it (no expires_at yet).
            await conn.execute(
                text(
                    "INSERT INTO api_tokens (id, name, role, token_hash, created_at, created_by,"
                    " revoked_at) VALUES (:id, :name, :role, :token_hash, :created_at,"
                    " :created_by, :revoked_at)"
                ),
                rows,
            )
            await conn.run_sync(upgrade_to, "head")
            found = (await conn.execute(select(api_tokens.c.id, api_tokens.c.name))).all()
            names = {row.id: row.name for row in found}
    finally:
        await engine.dispose()
    assert names[rows[0]["id"]] == "ci-bot"  # the oldest keeps its name
    assert names[rows[1]["id"]] == f"ci-bot ({rows[1]['id'][:8]})"
    assert names[rows[2]["id"]] == "ci-bot"  # revoked: not live, left alone
    assert names[rows[3]["id"]] == "itsm"
