"""The idempotent consumer: inbox-deduplicated handling, offsets committed after the handler's
transaction, failures classified (certrotate_shared.failures):

- transient (network, SEPM 5xx/429, database or vault unavailable): the record stays
  unacknowledged and its partition waits, with back-off, however long it takes;
- permanent or unknown, after `max_attempts`: a command is answered with its typed failure
  event; anything else (and a record we cannot decode) is parked in the DLQ, and the parking
  is reported on the events topic (MessageDeadLettered) so that its saga does not wait on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from certrotate_shared import metrics, tracing
from certrotate_shared.envelope import Command, Envelope, Event, Message
from certrotate_shared.failures import backoff_delay, describe, is_transient, typed_failure
from certrotate_shared.logs import log_context
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord, Subscription, Transport
from certrotate_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a handler gets besides its message: the transaction and the envelope it came in."""

    uow: UnitOfWork
    envelope: Envelope

    def emit(self, message: Message) -> Envelope:
        """Queue a message caused by the one being handled (same saga, same correlation)."""
        return self.uow.emit(message, saga_id=self.envelope.saga_id, causation=self.envelope)


Handler = Callable[[Message, Context], Awaitable[Event | None]]


class PermanentError(Exception):
    """A message that can never succeed: answered (or parked) without further attempts."""


FailureFor = Callable[[Message, str], Event | None]

# Dead-letter reports get an id derived from where the record was, so that a record parked
# twice (a crash between the DLQ publish and the offset commit) is reported once.
_DEAD_LETTER_IDS = uuid.UUID("6f1d2a52-3c1b-4a0e-9a57-8e1f6b2d4c10")


class MessageConsumer:
    """Feed records from a subscription to handlers, once each, in order per partition."""

    def __init__(
        self,
        *,
        subscription: Subscription,
        uow_factory: Callable[[], UnitOfWork],
        handlers: Mapping[type[Message], Handler],
        transport: Transport,
        dlq_topic: str,
        service: str,
        events_topic: str | None = None,
        max_attempts: int = 5,
        retry_base_delay: float = 0.2,
        transient_max_delay: float = 30.0,
        failure_for: FailureFor = typed_failure,
        before_commit: Callable[[], Awaitable[None]] | None = None,
        batch_transactions: bool = False,
    ) -> None:
        self._sub = subscription
        self._uow_factory = uow_factory
        self._handlers = handlers
        self._transport = transport
        self._dlq = dlq_topic
        self._events = events_topic
        self._service = service
        self._max_attempts = max_attempts
        self._delay = retry_base_delay
        self._max_delay = transient_max_delay
        self._failure_for = failure_for
        # A test hook: runs after handling and before the offset commit (crash testing).
        self._before_commit = before_commit
        # One transaction per fetched batch instead of per message: only for handlers whose
        # every effect is in the database (a rolled-back batch is simply handled again).
        self._batch = batch_transactions
        self._stopping = False
        # Partitions held back by a transient error: when to try again, and how often it failed.
        self._paused: dict[tuple[str, int], float] = {}
        self._holds: dict[tuple[str, int], tuple[int, int]] = {}
        self.serving = False
        self.handled = 0
        self.duplicates = 0
        self.failed = 0
        self.dead_lettered = 0

    def stop(self) -> None:
        """Finish the batch in hand (and commit its offsets), then return from run()."""
        self._stopping = True

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed per (topic, partition); empty while not consuming."""
        return await self._sub.lag() if self.serving else {}

    async def run(self) -> None:
        await self._sub.start()
        self.serving = True
        # The offset commit of the previous poll, still on its way to the broker while this
        # poll's records are handled (their transactions committed before it was sent).
        committing: asyncio.Task[None] | None = None
        try:
            while not self._stopping:
                if committing is not None and committing.done():
                    landed, committing = committing, None
                    landed.result()  # a failed commit restarts the consumer (run() raises)
                self._resume_due()
                batches = await self._sub.poll(self._poll_timeout())
                if not batches:
                    continue
                done = await asyncio.gather(*(self._process_partition(r) for r in batches.values()))
                last = {(d.topic, d.partition): d for d in done if d is not None}
                if not last:
                    continue
                if self._before_commit is not None:
                    await self._before_commit()
                if committing is not None:
                    await committing  # in order, and its failure surfaces here
                # One commit for every partition of the poll, not awaited before the next
                # poll: a crash before it lands only redelivers what the inbox has recorded.
                committing = asyncio.create_task(self._sub.commit(last))
        finally:
            self.serving = False
            try:
                if committing is not None:
                    await committing
            finally:
                await self._sub.stop()

    def _poll_timeout(self) -> float:
        if not self._paused:
            return 0.5
        due = min(self._paused.values()) - asyncio.get_running_loop().time()
        return min(0.5, max(0.0, due))

    def _resume_due(self) -> None:
        now = asyncio.get_running_loop().time()
        for key, at in list(self._paused.items()):
            if at <= now:
                del self._paused[key]
                self._sub.resume(*key)

    async def _process_partition(self, records: list[IncomingRecord]) -> IncomingRecord | None:
        """Handle a partition's records in order; the last one done (to commit), if any."""
        done: IncomingRecord | None = None
        if self._batch and len(records) > 1 and await self._handle_batch(records):
            done = records[-1]
        else:
            for record in records:
                if not await self.process(record):
                    await self._hold(record)
                    break
                done = record
        return done

    async def _hold(self, record: IncomingRecord) -> None:
        """Leave the record unacknowledged and its partition waiting, then try it again."""
        key = (record.topic, record.partition)
        offset, failures = self._holds.get(key, (record.offset, 0))
        failures = failures + 1 if offset == record.offset else 1
        self._holds[key] = (record.offset, failures)
        delay = backoff_delay(failures, base_s=self._delay, cap_s=self._max_delay)
        await self._sub.rewind(record.topic, record.partition, record.offset)
        self._sub.pause(record.topic, record.partition)
        self._paused[key] = asyncio.get_running_loop().time() + delay

    async def process(self, record: IncomingRecord) -> bool:
        """Handle one record: at most once in effect, however often it is delivered.

        False when a transient error stopped it: the record must be delivered again later."""
        if record.malformed is not None:
            await self._dead_letter(record, record.malformed, attempts=1)
            return True
        try:
            envelope = Envelope.from_bytes(record.value)
        except Exception as exc:
            await self._dead_letter(record, f"undecodable message: {describe(exc)}", attempts=1)
            return True
        try:
            message = envelope.message()
        except Exception as exc:
            error = f"undecodable {envelope.type} v{envelope.version}: {describe(exc)}"
            await self._dead_letter(record, error, attempts=1, envelope=envelope)
            return True
        handler = self._handlers.get(type(message))
        if handler is None:
            return True  # not ours: e.g. the orchestrator ignores events no saga waits for
        with handling(self._service, envelope, message):
            try:
                return await self._handle_with_attempts(record, envelope, message, handler)
            except Exception as exc:
                # Answering with a failure or parking failed too: the database or the broker.
                if is_transient(exc):
                    log.warning(
                        "%s: cannot conclude now (%s); will retry", envelope.type, describe(exc)
                    )
                    return False
                raise

    async def _handle_with_attempts(
        self, record: IncomingRecord, envelope: Envelope, message: Message, handler: Handler
    ) -> bool:
        last_error = ""
        attempt = 0
        while attempt < self._max_attempts:
            attempt += 1
            try:
                await self._handle_once(envelope, message, handler)
                self._holds.pop((record.topic, record.partition), None)
                return True
            except PermanentError as exc:
                last_error = describe(exc)
                break
            except Exception as exc:
                if is_transient(exc):
                    log.warning(
                        "%s for saga %s: transient failure, will retry: %s",
                        envelope.type,
                        envelope.saga_id,
                        describe(exc),
                    )
                    return False
                last_error = describe(exc)
                log.warning(
                    "%s failed on attempt %d/%d: %s",
                    envelope.type,
                    attempt,
                    self._max_attempts,
                    last_error,
                    exc_info=exc,
                )
                if attempt < self._max_attempts:
                    await asyncio.sleep(
                        backoff_delay(attempt, base_s=self._delay, cap_s=self._max_delay)
                    )
        if not await self._answer_with_failure(envelope, message, last_error):
            await self._dead_letter(record, last_error, attempts=attempt, envelope=envelope)
        return True

    async def _answer_with_failure(self, envelope: Envelope, message: Message, error: str) -> bool:
        """Answer a command that cannot succeed with its typed failure; False if it has none."""
        if not isinstance(message, Command):
            return False
        failure = self._failure_for(message, error)
        if failure is None:
            return False
        async with self._uow_factory() as uow:
            if await uow.first_delivery(envelope):
                uow.emit(failure, saga_id=envelope.saga_id, causation=envelope)
                await uow.record_outcome(message.idempotency_key, envelope.type, failure)
                await uow.commit()
        log.error(
            "%s for saga %s answered with %s: %s",
            envelope.type,
            envelope.saga_id,
            failure.type_name(),
            error,
        )
        self.failed += 1
        return True

    async def _handle_batch(self, records: list[IncomingRecord]) -> bool:
        """Handle a whole batch in one transaction; False (nothing kept) if anything fails."""
        try:
            if any(r.malformed for r in records):
                return False
            decoded = [Envelope.from_bytes(r.value) for r in records]
            work = [
                (e, m, h)
                for e in decoded
                if (h := self._handlers.get(type(m := e.message()))) is not None
            ]
            async with self._uow_factory() as uow:
                uow.batch = [e for e, _, _ in work]
                # The whole batch's inbox records (and its commands' recorded outcomes) in one
                # round trip instead of one per message.
                firsts = await uow.first_deliveries(
                    uow.batch, [m.idempotency_key for _, m, _ in work if isinstance(m, Command)]
                )
                handled: list[str] = []
                for (envelope, message, handler), first in zip(work, firsts, strict=True):
                    with handling(self._service, envelope, message):
                        if await self._handle_in(uow, envelope, message, handler, first=first):
                            handled.append(envelope.type)
                await uow.commit()
        except Exception as exc:
            log.warning("batch of %d fell back to one by one: %s", len(records), exc)
            return False
        self.handled += len(handled)
        for type_ in handled:
            metrics.MESSAGES_HANDLED.labels(self._service, type_).inc()
        return True

    async def _handle_once(self, envelope: Envelope, message: Message, handler: Handler) -> None:
        async with self._uow_factory() as uow:
            handled = await self._handle_in(uow, envelope, message, handler)
            await uow.commit()
        self.handled += handled
        if handled:
            metrics.MESSAGES_HANDLED.labels(self._service, envelope.type).inc()

    async def _handle_in(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        message: Message,
        handler: Handler,
        *,
        first: bool | None = None,
    ) -> int:
        """Handle inside the caller's transaction; 1 if handled, 0 if it was a duplicate.

        `first`: whether the inbox took it as a first delivery already (None: record it now)."""
        if first is None:
            # The inbox record and the look-up of the command's outcome in one round trip.
            keys = [message.idempotency_key] if isinstance(message, Command) else []
            (first,) = await uow.first_deliveries([envelope], keys)
        if not first:
            self.duplicates += 1
            return 0
        ctx = Context(uow=uow, envelope=envelope)
        if isinstance(message, Command):
            seen, outcome = await uow.recorded_outcome(message.idempotency_key)
            if seen:
                # The same step again (a re-sent command): report what happened, do nothing.
                if outcome is not None:
                    ctx.emit(outcome)
                self.duplicates += 1
                return 0
        outcome = await handler(message, ctx)
        if outcome is not None:
            ctx.emit(outcome)
        if isinstance(message, Command):
            await uow.record_outcome(message.idempotency_key, envelope.type, outcome)
        return 1

    async def _dead_letter(
        self,
        record: IncomingRecord,
        error: str,
        *,
        attempts: int,
        envelope: Envelope | None = None,
    ) -> None:
        """Park the record in the DLQ and report it, both acknowledged before its offset moves."""
        log.error(
            "dead-lettering %s[%d]@%d after %d attempt(s): %s",
            record.topic,
            record.partition,
            record.offset,
            attempts,
            error,
        )
        headers = [
            ("error", error[:1000].encode()),
            ("topic", record.topic.encode()),
            ("partition", str(record.partition).encode()),
            ("offset", str(record.offset).encode()),
            ("attempts", str(attempts).encode()),
            ("service", self._service.encode()),
        ]
        parked = [
            OutgoingRecord(topic=self._dlq, key=record.key, value=record.value, headers=headers)
        ]
        report = self._report(record, error, attempts=attempts, envelope=envelope)
        if report is not None:
            parked.append(report)
        # One publish: both are durably accepted before the offset is committed, so a crash in
        # between parks (and reports, under the same id) again rather than losing either.
        await self._transport.publish(parked)
        self.dead_lettered += 1
        metrics.MESSAGES_DEAD_LETTERED.labels(self._service).inc()

    def _report(
        self, record: IncomingRecord, error: str, *, attempts: int, envelope: Envelope | None
    ) -> OutgoingRecord | None:
        """MessageDeadLettered for the parked record's saga (None for a parked report)."""
        if self._events is None or (envelope and envelope.type == MessageDeadLettered.__name__):
            return None
        original = envelope.model_dump(mode="json") if envelope else _best_effort(record.value)
        payload = original.get("payload") if isinstance(original.get("payload"), dict) else {}
        key = payload.get("idempotency_key") if payload else None
        event = MessageDeadLettered(
            service=self._service,
            message_id=str(original.get("message_id") or ""),
            message_type=str(original.get("type") or ""),
            idempotency_key=key if isinstance(key, str) else None,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            attempts=attempts,
            error=error,
            envelope=original,
        )
        saga_id = envelope.saga_id if envelope else str(original.get("saga_id") or record.key)
        where = f"{self._service}:{record.topic}:{record.partition}:{record.offset}"
        report = Envelope.wrap(event, saga_id=saga_id, causation=envelope).model_copy(
            update={"message_id": uuid.uuid5(_DEAD_LETTER_IDS, where)}
        )
        return OutgoingRecord(topic=self._events, key=saga_id, value=report.to_bytes())


@contextmanager
def handling(
    service: str, envelope: Envelope, message: Message | None = None, *, verb: str = "handle"
) -> Iterator[None]:
    """Where a service works on a message (its handler, or a job it started later): log lines
    carry the message's ids, and a span continues the trace of the span that sent it."""
    if message is None:
        try:
            message = envelope.message()
        except Exception:
            message = None
    attributes = {
        "certrotate.service": service,
        "certrotate.rotation_id": envelope.saga_id,
        "messaging.message.id": str(envelope.message_id),
    }
    with (
        log_context(**message_log_fields(envelope, message)),
        tracing.span(
            f"{verb} {envelope.type}",
            kind=tracing.CONSUMER if verb == "handle" else tracing.INTERNAL,
            parent=envelope.headers,
            attributes=attributes,
        ),
    ):
        yield


def message_log_fields(envelope: Envelope, message: Message | None) -> dict[str, Any]:
    """The ids a log line about this message carries: its saga (the rotation), the site and
    step when the message names them, and its place in the causal chain."""
    site = getattr(message, "site", None)
    step = None
    key = getattr(message, "idempotency_key", None)
    if isinstance(key, str) and key.startswith(f"{envelope.saga_id}:"):
        # Command keys are "<saga>:<step>[@server][/pass]:<attempt>" (the saga table's _key).
        step = key.split(":")[1].split("@")[0].split("/")[0] or None
    return {
        "rotation_id": envelope.saga_id,
        "site": getattr(site, "site", site) if site is not None else None,
        "step": step,
        "message_id": str(envelope.message_id),
        "causation_id": envelope.causation_id,
        "message_type": envelope.type,
    }


def _best_effort(value: bytes) -> dict[str, Any]:
    """What can be read of an envelope that did not decode: its JSON object, if it is one."""
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
