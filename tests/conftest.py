"""Fixtures shared by every tier. Integration tests need the real PostgreSQL and Kafka that
`deploy/local/up.sh` starts; they fail (not skip) when those are missing."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from certrotate_shared.db import make_engine
from certrotate_shared.secretbox import generate_master_key

PG_URL = os.environ.get(
    "CERTROTATE_TEST_PG_URL", "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate"
)
KAFKA = os.environ.get("CERTROTATE_TEST_KAFKA", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
def pg_url() -> str:
    return PG_URL


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA


@pytest.fixture
def topic_prefix() -> str:
    """A private set of topics per test, so tests share one broker without crosstalk."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pg_schemas() -> AsyncIterator[list[str]]:
    """Schemas a test creates; dropped afterwards."""
    created: list[str] = []
    yield created
    engine = make_engine(PG_URL, "public")
    async with engine.begin() as conn:
        for schema in created:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture
def clean_env() -> Iterator[dict[str, str]]:
    """A copy of the environment without CERTROTATE_ variables, for child processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    yield env
