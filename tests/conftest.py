"""Fixtures shared by every tier. Integration tests need the real PostgreSQL and Kafka that
`deploy/local/up.sh` starts; they fail (not skip) when those are missing."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
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
def topic_prefix() -> Iterator[str]:
    """A private set of topics per test, so tests share one broker without crosstalk.

    The topics are deleted afterwards: each partition holds open files in the broker, and a
    suite's worth of leftover topics exhausted the broker's file limit ("Too many open files").
    """
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    # Its own thread and loop: the finalizer may run while a test's event loop is still set.
    worker = threading.Thread(target=asyncio.run, args=(_delete_topics(prefix),))
    worker.start()
    worker.join(timeout=60)


async def _delete_topics(prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, request_timeout_ms=20_000)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if mine:
            await admin.delete_topics(mine, timeout_ms=20_000)
    except Exception as exc:  # a unit test never touched Kafka, or the broker is gone
        logging.getLogger(__name__).debug("topics of %s not deleted: %s", prefix, exc)
    finally:
        await admin.close()


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
