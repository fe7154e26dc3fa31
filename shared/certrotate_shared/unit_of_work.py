"""One database transaction that carries a state change and the messages it causes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.util import greenlet_spawn

from certrotate_shared import portable_writes, postgres_writes, tracing
from certrotate_shared.db import asyncpg_connection
from certrotate_shared.envelope import Envelope, Event, Message, utcnow
from certrotate_shared.outbox_signal import HandedRow, OutboxSignal
from certrotate_shared.topics import topic_for


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
        bind = sessions.kw.get("bind")
        # Where a transaction that wrote nothing through the session sends its one statement.
        self._engine = bind if isinstance(bind, AsyncEngine) else None
        self._prefix = topic_prefix
        self._signal = signal
        self._channel = notify_channel
        self._pending: list[tuple[str, Envelope]] = []
        self._deferred: dict[str, Callable[[], Awaitable[None]]] = {}
        self._committed: list[Callable[[], None]] = []
        # Command outcomes known in this transaction (read ahead, or recorded and not yet
        # written): key -> the answer (None: accepted, still running).
        self._outcomes: dict[str, Event | None] = {}
        # PostgreSQL: outcomes recorded in this transaction, written by commit() (by key).
        self._outcome_rows: dict[str, dict[str, Any]] = {}
        # The envelopes of the batch this transaction handles (the consumer's batches), so
        # that a handler can read ahead what the whole batch needs in one round trip.
        self.batch: list[Envelope] = []
        self._session: AsyncSession | None = None
        self._raw: asyncpg.Connection | None = None

    @property
    def session(self) -> AsyncSession:
        """The transaction's SQLAlchemy session, opened when first used: a transaction that
        only emits (a command sent, nothing read) never pays for one (a fifth of a sending
        process's CPU went to the session and its connection checkout)."""
        if self._session is None:
            self._session = self._sessions()
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = None
        self._raw = None
        self._pending = []
        self._deferred = {}
        self._committed = []
        self._outcomes = {}
        self._outcome_rows = {}
        self.batch = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._deferred = {}
        self._committed = []
        self._outcomes = {}
        self._outcome_rows = {}
        self._raw = None
        session, self._session = self._session, None
        if session is not None:
            await session.rollback()
            await session.close()

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

    def _postgres(self) -> bool:
        bind = self._engine if self._engine is not None else self.session.get_bind()
        return bind.dialect.name == "postgresql"

    async def _driver(self) -> asyncpg.Connection:
        """PostgreSQL: the asyncpg connection under this transaction, its BEGIN sent: the
        backbone's own statements go to it directly (db.asyncpg_connection)."""
        if self._raw is None:
            driver = await asyncpg_connection(self.session)
            assert driver is not None, "PostgreSQL only"
            self._raw = driver
        return self._raw

    async def commit(self) -> None:
        await self.flush_deferred()
        if not self._postgres():
            await self._write_portable()
            await self.session.commit()
            self._committed_now(notify=bool(self._pending))
            return
        # This process's relay publishes what the commit wrote without reading it back; the
        # place is taken before the commit, so the relay keeps the order of dependent commits
        # (per saga: the outbox key).
        handoff = (
            self._signal.reserve(frozenset(e.saga_id for _, e in self._pending))
            if self._pending
            else None
        )
        committed = None
        try:
            written = await self._write_postgres(notify=handoff is not None and not handoff.quiet)
            if self._session is not None:
                await self._session.commit()
            committed = written
        finally:
            if handoff is not None:
                self._signal.settle(handoff, committed)
        self._committed_now(notify=False)

    def _committed_now(self, *, notify: bool) -> None:
        self._raw = None
        self._outcomes = {}
        self._pending = []
        if notify:
            self._signal.notify()
        committed, self._committed = self._committed, []
        for callback in committed:
            callback()

    async def _write_postgres(self, *, notify: bool) -> list[HandedRow]:
        """Outbox rows, command outcomes and (when `notify`) the NOTIFY: one statement, one
        round trip. The rows written, as the relay publishes them."""
        pending, outcomes = self._pending, list(self._outcome_rows.values())
        notify = notify and self._channel is not None
        if not pending and not outcomes:
            return []
        stmt, args = postgres_writes.commit_writes(
            pending, outcomes, (cast(str, self._channel), self._signal.token) if notify else None
        )
        if self._session is not None and self._session.in_transaction():
            ids = await (await self._driver()).fetchval(stmt, *args)
        else:
            # Nothing else was written or read in this transaction: its one statement is atomic
            # on its own, so it goes without BEGIN and COMMIT (two round trips fewer), and
            # commits (NOTIFY included) when it returns. The session has nothing to commit.
            ids = await self._one_statement(stmt, args)
        self._outcome_rows = {}
        return postgres_writes.handed_rows(ids, args)

    async def _one_statement(self, stmt: str, args: list[Any]) -> Any:
        """Run one statement on a pooled connection outside any transaction (autocommit)."""
        if self._engine is None:
            fairy = await (await self.session.connection()).get_raw_connection()
            driver: asyncpg.Connection = fairy.driver_connection
            return await driver.fetchval(stmt, *args)
        pooled = await self._engine.raw_connection()
        try:
            driver = pooled.driver_connection
            return await driver.fetchval(stmt, *args)
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool (nothing to roll back)

    async def _write_portable(self) -> None:
        notify = (self._channel, self._signal.token) if self._channel else None
        await portable_writes.write_outbox(self.session, self._pending, notify)

    async def first_delivery(self, envelope: Envelope) -> bool:
        """Record the message in the inbox; False if it was handled before."""
        return await portable_writes.first_delivery(self.session, envelope)

    async def first_deliveries(
        self, envelopes: list[Envelope], idempotency_keys: list[str]
    ) -> list[bool]:
        """Record a batch of messages in the inbox; for each, whether this is its first
        delivery (a message id repeated in the batch is first only at its first place). The
        outcomes recorded for `idempotency_keys` are read ahead for recorded_outcome()."""
        if not self._postgres():
            return [await self.first_delivery(e) for e in envelopes]
        driver = await self._driver()
        return await postgres_writes.first_deliveries(
            driver, envelopes, idempotency_keys, self._outcomes
        )

    async def recorded_outcome(self, idempotency_key: str) -> tuple[bool, Event | None]:
        """(seen, outcome) for a command key; outcome is None while a long command runs."""
        if idempotency_key in self._outcomes:
            known = self._outcomes[idempotency_key]
            return (False, None) if known is postgres_writes.NOT_SEEN else (True, known)
        return await portable_writes.recorded_outcome(self.session, idempotency_key)

    async def record_outcome(
        self, idempotency_key: str, command_type: str, outcome: Event | None
    ) -> None:
        """Remember how a command ended, or that it was accepted (outcome None)."""
        self._outcomes[idempotency_key] = outcome
        if self._postgres():
            # Written by commit(), with the outbox rows, in the same round trip.
            self._outcome_rows[idempotency_key] = {
                "idempotency_key": idempotency_key,
                "command_type": command_type,
                "outcome_type": outcome.type_name() if outcome else None,
                "outcome_version": outcome.schema_version if outcome else None,
                "outcome_payload": outcome.model_dump_json() if outcome else None,
                "recorded_at": utcnow(),
            }
            return
        await portable_writes.record_outcome(self.session, idempotency_key, command_type, outcome)
