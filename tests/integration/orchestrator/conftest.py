from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.orchestrator.harness import Embedded, embedded_orchestrator


@pytest.fixture
async def embedded(tmp_path, master_key) -> AsyncIterator[Embedded]:
    """The orchestrator on SQLite and the in-process transport, with a stand-in worker."""
    async for env in _embedded(tmp_path, master_key, {}):
        yield env


@pytest.fixture
async def embedded_pg(tmp_path, master_key, pg_url, pg_schemas) -> AsyncIterator[Embedded]:
    """The same on PostgreSQL (a schema of its own): what a distributed deployment reads."""
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.extend([schema, f"{schema}_vault"])
    database = {"database_url": pg_url, "database_schema": schema,
                "vault_url": pg_url, "vault_schema": f"{schema}_vault"}  # fmt: skip
    async for env in _embedded(tmp_path, master_key, database):
        yield env


async def _embedded(
    tmp_path: Path, master_key: str, overrides: dict[str, Any]
) -> AsyncIterator[Embedded]:
    async for env in embedded_orchestrator(
        tmp_path, master_key, kind=Embedded, max_body_bytes=64 * 1024, **overrides
    ):
        yield env
