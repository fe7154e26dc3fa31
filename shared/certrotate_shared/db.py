"""Async SQLAlchemy engines: PostgreSQL (one schema per service) or SQLite (one file per service)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:// URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


@functools.lru_cache(maxsize=64)
def is_postgres(url: str) -> bool:
    # Cached: asked for every unit of work, and parsing the URL was 2 % of a busy service's CPU.
    return make_url(url).get_backend_name() == "postgresql"


def make_engine(url: str, schema: str, **kwargs: Any) -> AsyncEngine:
    """An engine whose connections see only `schema` (PostgreSQL) or one SQLite file."""
    url = normalize_url(url)
    if is_postgres(url):
        engine = create_async_engine(
            url,
            connect_args={"server_settings": {"search_path": schema, "synchronous_commit": "on"}},
            pool_size=kwargs.pop("pool_size", 20),
            # No overflow: a connection opened for a burst and closed after one transaction
            # costs a backend start, asyncpg's type introspection and every statement
            # prepared afresh; waiting for a pooled one is faster (it halved what a busy
            # service carried at 64 messages in flight).
            max_overflow=kwargs.pop("max_overflow", 0),
            **kwargs,
        )
        event.listen(engine.sync_engine, "checkout", _drop_closed_connection)
        return engine
    kwargs.pop("pool_size", None)  # SQLite: one file, its own pool
    kwargs.pop("max_overflow", None)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the relay read while a handler writes; FULL sync keeps commits durable.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _drop_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection the server has closed (a restart, an idle timeout).

    Instead of SQLAlchemy's pre-ping, which costs three round trips (BEGIN, a ping, ROLLBACK)
    on every checkout, i.e. on every transaction: asyncpg notices a socket the server closed as
    soon as it happens, so asking it costs nothing. Raising DisconnectionError makes the pool
    discard the connection and hand out (or open) another."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


async def asyncpg_connection(session: AsyncSession) -> asyncpg.Connection | None:
    """PostgreSQL: the asyncpg connection under the session's transaction, its BEGIN sent;
    None on SQLite.

    For the hot statements (the backbone's inbox and outbox, the orchestrator's saga rows):
    asyncpg's own prepared statements cost a fifth of SQLAlchemy's per-statement CPU, and run
    in the same transaction as what goes through the session. SQLAlchemy's asyncpg adapter
    begins a transaction lazily, on its first statement; beginning it here is what it would do
    (it then sees the transaction as begun, and commits or rolls it back as always)."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return None
    fairy = await connection.get_raw_connection()
    adapter: Any = fairy.dbapi_connection
    if adapter._transaction is None:
        await adapter._start_transaction()
    driver: asyncpg.Connection = fairy.driver_connection
    return driver


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(url: str) -> str:
    """The DSN asyncpg itself accepts (for LISTEN connections)."""
    return (
        make_url(normalize_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
