"""The unit of work's statements through SQLAlchemy, for any dialect: SQLite (embedded mode)
uses them for everything, PostgreSQL for a single inbox record or outcome look-up."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import Envelope, Event, message_class, utcnow
from certrotate_shared.tables import command_outcomes, inbox, outbox

_NOTIFY = text("SELECT pg_notify(:c, :p)")

_INBOX_INSERTS: dict[str, Any] = {}


def _inbox_insert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING, built once per dialect (a hot path)."""
    stmt = _INBOX_INSERTS.get(dialect)
    if stmt is None:
        insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert_(inbox)
            .values({c: bindparam(c) for c in ("message_id", "message_type", "received_at")})
            .on_conflict_do_nothing()
            .returning(inbox.c.message_id)
        )
        _INBOX_INSERTS[dialect] = stmt
    return stmt


async def write_outbox(
    session: AsyncSession, pending: list[tuple[str, Envelope]], notify: tuple[str, str] | None
) -> None:
    """The commit's outbox rows, and the NOTIFY (channel, payload) when given."""
    if pending:
        await session.execute(
            insert(outbox),
            [
                {
                    "message_id": str(env.message_id),
                    "topic": topic,
                    "key": env.saga_id,
                    "value": env.to_bytes(),
                    "created_at": env.occurred_at,
                }
                for topic, env in pending
            ],
        )
        if notify is not None:
            # Delivered by PostgreSQL only when this transaction commits.
            channel, payload = notify
            await session.execute(_NOTIFY, {"c": channel, "p": payload})


async def first_delivery(session: AsyncSession, envelope: Envelope) -> bool:
    """Record the message in the inbox; False if it was handled before."""
    values = {
        "message_id": str(envelope.message_id),
        "message_type": envelope.type,
        "received_at": utcnow(),
    }
    stmt = _inbox_insert(session.get_bind().dialect.name)
    return (await session.execute(stmt, values)).first() is not None


async def recorded_outcome(
    session: AsyncSession, idempotency_key: str
) -> tuple[bool, Event | None]:
    """(seen, outcome) for a command key; outcome is None while a long command runs."""
    row = (
        await session.execute(
            select(command_outcomes).where(command_outcomes.c.idempotency_key == idempotency_key)
        )
    ).first()
    if row is None:
        return False, None
    if row.outcome_type is None:
        return True, None
    cls = message_class(row.outcome_type, row.outcome_version)
    # record_outcome() stores only a command's answer, always an event.
    return True, cast(Event, cls.model_validate(row.outcome_payload))


async def record_outcome(
    session: AsyncSession, idempotency_key: str, command_type: str, outcome: Event | None
) -> None:
    """Upsert how a command ended, or that it was accepted (outcome None)."""
    values = {
        "command_type": command_type,
        "outcome_type": outcome.type_name() if outcome else None,
        "outcome_version": outcome.schema_version if outcome else None,
        "outcome_payload": outcome.model_dump(mode="json") if outcome else None,
        "recorded_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(command_outcomes)
    stmt = stmt.values(idempotency_key=idempotency_key, **values).on_conflict_do_update(
        index_elements=[command_outcomes.c.idempotency_key], set_=values
    )
    await session.execute(stmt)
