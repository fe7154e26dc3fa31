"""The connection pool on the real PostgreSQL: a connection the server closed is never handed
out again (the pool checks it without a round trip of its own)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from certrotate_shared.db import make_engine

pytestmark = pytest.mark.integration


async def test_a_pooled_connection_the_server_closed_is_replaced_before_use(pg_url):
    """A PostgreSQL restart or an administrator's pg_terminate_backend closes the pooled
    connections: the next transaction must run on a fresh one, not fail."""
    engine = make_engine(pg_url, "public", pool_size=1, max_overflow=0)
    admin = make_engine(pg_url, "public")
    try:
        async with engine.connect() as conn:
            first_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            driver = (await conn.get_raw_connection()).driver_connection
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first_pid})
        # The only pooled connection is now closed by the server; wait for the client to see
        # the socket close (not a timing assertion: the test only waits for the fact).
        await asyncio.wait_for(_until_closed(driver), 30)

        async with engine.begin() as conn:
            second_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second_pid != first_pid
    finally:
        await engine.dispose()
        await admin.dispose()


async def _until_closed(driver) -> None:
    while not driver.is_closed():
        await asyncio.sleep(0.01)


async def test_a_burst_beyond_the_pool_waits_for_a_pooled_connection_instead_of_opening_more(
    pg_url,
):
    """Sixty-four transactions at once on a pool of four: they take turns on the same four
    connections. Opening a connection per surplus transaction and closing it again after use
    (an "overflow") costs a PostgreSQL backend start, asyncpg's type introspection and every
    statement prepared afresh: under load it halved the messages a service carries."""
    engine = make_engine(pg_url, "public", pool_size=4)
    try:

        async def one() -> int:
            async with engine.begin() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                await asyncio.sleep(0.01)  # hold it, so that the others must wait or open more
                return int(pid)

        backends = await asyncio.gather(*(one() for _ in range(64)))
        assert len(set(backends)) <= 4
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
