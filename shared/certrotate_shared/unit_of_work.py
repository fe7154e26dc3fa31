"""One database transaction that carries a state change and the messages it causes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, cast

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certrotate_shared import tracing
from certrotate_shared.envelope import Envelope, Event, Message, message_class, utcnow
from certrotate_shared.tables import command_outcomes, inbox, outbox
from certrotate_shared.topics import topic_for


class OutboxSignal:
    """Wakes the relay in this process when a transaction with outbox rows commits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        # The NOTIFY payload of this process's commits: its relay, woken already by notify(),
        # ignores them on LISTEN (other replicas' relays still wake on them).
        self.token = uuid.uuid4().hex

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._event.clear()


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


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a service's outbox."""
    return f"certrotate_outbox_{schema}"


class UnitOfWork:
    """Use as `async with uow:`; nothing is written or published unless `commit()` is called."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        topic_prefix: str,
        signal: OutboxSignal,
        notify_channel: str | None,
    ) -> None:
        self._sessions = sessions
        self._prefix = topic_prefix
        self._signal = signal
        self._channel = notify_channel
        self._pending: list[tuple[str, Envelope]] = []
        self._deferred: dict[str, Callable[[], Awaitable[None]]] = {}
        self._committed: list[Callable[[], None]] = []
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self._pending = []
        self._deferred = {}
        self._committed = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._deferred = {}
        self._committed = []
        await self.session.rollback()
        await self.session.close()

    def defer(self, key: str, flush: Callable[[], Awaitable[None]]) -> None:
        """Have `flush` run once before this transaction commits (first `defer` of a key wins).

        For writes that handlers of a batch accumulate and send as one statement."""
        self._deferred.setdefault(key, flush)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed (never if it rolls back): for
        what must count only what really happened, such as metrics."""
        self._committed.append(callback)

    async def flush_deferred(self) -> None:
        """Run the deferred writes now, in the order they were first deferred."""
        while self._deferred:
            key = next(iter(self._deferred))
            await self._deferred.pop(key)()

    def emit(
        self,
        message: Message,
        *,
        saga_id: str,
        causation: Envelope | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """Queue a message for the outbox; it is written by commit(), in the same transaction."""
        topic = topic_for(message, self._prefix)
        headers = (
            tracing.message_headers(
                f"send {message.type_name()}",
                cause=causation.headers if causation else None,
                attributes={"certrotate.rotation_id": saga_id, "messaging.destination.name": topic},
            )
            if tracing.enabled()
            else None
        )
        envelope = Envelope.wrap(
            message,
            saga_id=saga_id,
            causation=causation,
            correlation_id=correlation_id,
            headers=headers,
        )
        self._pending.append((topic, envelope))
        return envelope

    def republish(self, envelope: Envelope, topic: str) -> None:
        """Queue an envelope exactly as it was (same message id) for `topic`: an operator's
        replay of a parked message, which the receiving inbox has never recorded as handled."""
        self._pending.append((topic, envelope))

    async def commit(self) -> None:
        await self.flush_deferred()
        if self._pending:
            await self.session.execute(
                insert(outbox),
                [
                    {
                        "message_id": str(env.message_id),
                        "topic": topic,
                        "key": env.saga_id,
                        "value": env.to_bytes(),
                        "created_at": env.occurred_at,
                    }
                    for topic, env in self._pending
                ],
            )
            if self._channel:
                # Delivered by PostgreSQL only when this transaction commits.
                await self.session.execute(_NOTIFY, {"c": self._channel, "p": self._signal.token})
        await self.session.commit()
        if self._pending:
            self._pending = []
            self._signal.notify()
        committed, self._committed = self._committed, []
        for callback in committed:
            callback()

    async def first_delivery(self, envelope: Envelope) -> bool:
        """Record the message in the inbox; False if it was handled before."""
        values = {
            "message_id": str(envelope.message_id),
            "message_type": envelope.type,
            "received_at": utcnow(),
        }
        stmt = _inbox_insert(self.session.get_bind().dialect.name)
        return (await self.session.execute(stmt, values)).first() is not None

    async def recorded_outcome(self, idempotency_key: str) -> tuple[bool, Event | None]:
        """(seen, outcome) for a command key; outcome is None while a long command runs."""
        row = (
            await self.session.execute(
                select(command_outcomes).where(
                    command_outcomes.c.idempotency_key == idempotency_key
                )
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
        self, idempotency_key: str, command_type: str, outcome: Event | None
    ) -> None:
        """Remember how a command ended, or that it was accepted (outcome None)."""
        values = {
            "command_type": command_type,
            "outcome_type": outcome.type_name() if outcome else None,
            "outcome_version": outcome.schema_version if outcome else None,
            "outcome_payload": outcome.model_dump(mode="json") if outcome else None,
            "recorded_at": utcnow(),
        }
        dialect = self.session.get_bind().dialect.name
        stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(command_outcomes)
        stmt = stmt.values(idempotency_key=idempotency_key, **values).on_conflict_do_update(
            index_elements=[command_outcomes.c.idempotency_key], set_=values
        )
        await self.session.execute(stmt)
