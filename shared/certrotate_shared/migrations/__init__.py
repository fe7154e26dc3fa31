"""Alembic, run programmatically: a shared chain for messaging tables, one chain per service."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from certrotate_shared.db import is_postgres, make_engine

MESSAGING = str(Path(__file__).parent / "messaging")
VAULT = str(Path(__file__).parent / "vault")


def run_env(context: Any) -> None:
    """The body of every env.py: migrate on the connection the runner hands over."""
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        version_table=config.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _upgrade(connection: Connection, script_location: str, version_table: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    command.upgrade(config, "head")


# Alembic keeps the migration context in module globals: two upgrades interleaving on one event
# loop (services starting together in embedded mode) would corrupt each other.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def migrate(url: str, schema: str, chains: list[tuple[str, str]]) -> None:
    """Create the schema if needed and bring each (script_location, version_table) to head."""
    lock = _locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        await _migrate(url, schema, chains)


async def _migrate(url: str, schema: str, chains: list[tuple[str, str]]) -> None:
    engine = make_engine(url, schema)
    try:
        async with engine.begin() as conn:
            if is_postgres(url):
                # Replicas starting together must not race each other through the same DDL.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema}
                )
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            for script_location, version_table in chains:
                await conn.run_sync(_upgrade, script_location, version_table)
    finally:
        await engine.dispose()


def messaging_chain() -> tuple[str, str]:
    return (MESSAGING, "alembic_version_messaging")


def vault_chain() -> tuple[str, str]:
    return (VAULT, "alembic_version_vault")
