"""One database transaction that carries a state change and the messages it causes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, cast

import asyncpg
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certrotate_shared import tracing
from certrotate_shared.db import asyncpg_connection
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

# PostgreSQL: what a commit writes (outbox rows, command outcomes) and its NOTIFY in ONE round
# trip, whatever the number of rows (arrays, so the statement text never changes). The outbox
# rows get their ids in the order given: the relay publishes in id order. These statements go
# to asyncpg directly (see UnitOfWork._driver), hence the $n parameters.
_PG_OUTBOX = """sent AS (
    INSERT INTO outbox (message_id, topic, key, value, created_at)
    SELECT m, t, k, v, c FROM unnest(
        $1::varchar[], $2::varchar[], $3::varchar[], $4::bytea[], $5::timestamptz[]
    ) WITH ORDINALITY AS u(m, t, k, v, c, n) ORDER BY n
    RETURNING 1
)"""
_PG_OUTCOMES = """recorded AS (
    INSERT INTO command_outcomes (idempotency_key, command_type, outcome_type, outcome_version,
                                  outcome_payload, recorded_at)
    SELECT * FROM unnest(
        ${0}::varchar[], ${1}::varchar[], ${2}::varchar[], ${3}::int[], ${4}::json[],
        ${5}::timestamptz[]
    )
    ON CONFLICT (idempotency_key) DO UPDATE SET
        command_type = excluded.command_type, outcome_type = excluded.outcome_type,
        outcome_version = excluded.outcome_version, outcome_payload = excluded.outcome_payload,
        recorded_at = excluded.recorded_at
    RETURNING 1
)"""
_PG_COMMIT_WRITES: dict[tuple[bool, bool, bool], str] = {}


def _pg_commit_writes(outbox_rows: bool, outcomes: bool, notify: bool) -> str:
    key = (outbox_rows, outcomes, notify)
    stmt = _PG_COMMIT_WRITES.get(key)
    if stmt is None:
        ctes, n = [], 0
        if outbox_rows:
            ctes.append(_PG_OUTBOX)
            n = 5
        if outcomes:
            ctes.append(_PG_OUTCOMES.format(*range(n + 1, n + 7)))
            n += 6
        tail = f"SELECT pg_notify(${n + 1}, ${n + 2})" if notify else "SELECT 1"
        stmt = f"WITH {', '.join(ctes)} {tail}"
        _PG_COMMIT_WRITES[key] = stmt
    return stmt


# PostgreSQL: a batch's inbox records and the outcomes already recorded for its commands, in
# one round trip. A message id given twice is returned once (the caller takes the first).
_PG_FIRST_DELIVERIES = """WITH fresh AS (
    INSERT INTO inbox (message_id, message_type, received_at)
    SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[])
    ON CONFLICT DO NOTHING RETURNING message_id
)
SELECT message_id AS k, NULL AS t, NULL AS v, NULL AS p FROM fresh
UNION ALL
SELECT idempotency_key, COALESCE(outcome_type, ''), outcome_version, CAST(outcome_payload AS text)
FROM command_outcomes WHERE idempotency_key = ANY($4::varchar[])"""


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
        # Command outcomes known in this transaction (read ahead, or recorded and not yet
        # written): key -> the answer (None: accepted, still running).
        self._outcomes: dict[str, Event | None] = {}
        # PostgreSQL: outcomes recorded in this transaction, written by commit() (by key).
        self._outcome_rows: dict[str, dict[str, Any]] = {}
        # The envelopes of the batch this transaction handles (the consumer's batches), so
        # that a handler can read ahead what the whole batch needs in one round trip.
        self.batch: list[Envelope] = []
        self.session: AsyncSession
        self._raw: asyncpg.Connection | None = None

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
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

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

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
        if self._postgres():
            await self._write_postgres()
        else:
            await self._write_portable()
        await self.session.commit()
        self._raw = None
        self._outcomes = {}
        if self._pending:
            self._pending = []
            self._signal.notify()
        committed, self._committed = self._committed, []
        for callback in committed:
            callback()

    async def _write_postgres(self) -> None:
        """Outbox rows, command outcomes and the NOTIFY: one statement, one round trip."""
        pending, outcomes = self._pending, list(self._outcome_rows.values())
        notify = bool(pending) and self._channel is not None
        if not pending and not outcomes:
            return
        args: list[Any] = []
        if pending:
            args += [
                [str(env.message_id) for _, env in pending],
                [topic for topic, _ in pending],
                [env.saga_id for _, env in pending],
                [env.to_bytes() for _, env in pending],
                [env.occurred_at for _, env in pending],
            ]
        if outcomes:
            args += [
                [o["idempotency_key"] for o in outcomes],
                [o["command_type"] for o in outcomes],
                [o["outcome_type"] for o in outcomes],
                [o["outcome_version"] for o in outcomes],
                [o["outcome_payload"] for o in outcomes],
                [o["recorded_at"] for o in outcomes],
            ]
        if notify:
            # Delivered by PostgreSQL only when this transaction commits.
            args += [self._channel, self._signal.token]
        if self.session.in_transaction():
            driver = await self._driver()
        else:
            # Nothing else was written or read in this transaction: its one statement is atomic
            # on its own, so it goes without BEGIN and COMMIT (two round trips fewer), and
            # commits (NOTIFY included) when it returns. The session then has nothing to commit.
            fairy = await (await self.session.connection()).get_raw_connection()
            driver = fairy.driver_connection
        await driver.fetchval(_pg_commit_writes(bool(pending), bool(outcomes), notify), *args)
        self._outcome_rows = {}

    async def _write_portable(self) -> None:
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

    async def first_delivery(self, envelope: Envelope) -> bool:
        """Record the message in the inbox; False if it was handled before."""
        values = {
            "message_id": str(envelope.message_id),
            "message_type": envelope.type,
            "received_at": utcnow(),
        }
        stmt = _inbox_insert(self.session.get_bind().dialect.name)
        return (await self.session.execute(stmt, values)).first() is not None

    async def first_deliveries(
        self, envelopes: list[Envelope], idempotency_keys: list[str]
    ) -> list[bool]:
        """Record a batch of messages in the inbox; for each, whether this is its first
        delivery (a message id repeated in the batch is first only at its first place). The
        outcomes recorded for `idempotency_keys` are read ahead for recorded_outcome()."""
        if not self._postgres():
            return [await self.first_delivery(e) for e in envelopes]
        now = utcnow()
        driver = await self._driver()
        rows = await driver.fetch(
            _PG_FIRST_DELIVERIES,
            [str(e.message_id) for e in envelopes],
            [e.type for e in envelopes],
            [now] * len(envelopes),
            idempotency_keys,
        )
        fresh: set[str] = set()
        for key, outcome_type, version, payload in rows:
            if outcome_type is None:
                fresh.add(key)
            elif key not in self._outcomes:
                self._outcomes[key] = _outcome(outcome_type, version, payload)
        for key in idempotency_keys:
            self._outcomes.setdefault(key, _NOT_SEEN)
        firsts = []
        for envelope in envelopes:
            message_id = str(envelope.message_id)
            firsts.append(message_id in fresh)
            fresh.discard(message_id)
        return firsts

    async def recorded_outcome(self, idempotency_key: str) -> tuple[bool, Event | None]:
        """(seen, outcome) for a command key; outcome is None while a long command runs."""
        if idempotency_key in self._outcomes:
            known = self._outcomes[idempotency_key]
            return (False, None) if known is _NOT_SEEN else (True, known)
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


# "No outcome recorded for this key" in the read-ahead (distinct from None: accepted, running).
_NOT_SEEN: Any = object()


def _outcome(outcome_type: str, version: int | None, payload: str | None) -> Event | None:
    """A recorded outcome row as recorded_outcome() returns it ('' type: accepted, running)."""
    if not outcome_type:
        return None
    cls = message_class(outcome_type, version or 1)
    return cast(Event, cls.model_validate_json(payload or "{}"))
