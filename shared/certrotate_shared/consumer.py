"""The idempotent consumer: inbox-deduplicated handling, offsets committed after the handler's
transaction, poison messages parked in the DLQ without stalling their partition."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from certrotate_shared.envelope import Command, Envelope, Event, Message
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
    """A message that can never succeed; sent to the DLQ without further attempts."""


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
        max_attempts: int = 5,
        retry_base_delay: float = 0.2,
        before_commit: Callable[[], Awaitable[None]] | None = None,
        batch_transactions: bool = False,
    ) -> None:
        self._sub = subscription
        self._uow_factory = uow_factory
        self._handlers = handlers
        self._transport = transport
        self._dlq = dlq_topic
        self._service = service
        self._max_attempts = max_attempts
        self._delay = retry_base_delay
        # A test hook: runs after handling and before the offset commit (crash testing).
        self._before_commit = before_commit
        # One transaction per fetched batch instead of per message: only for handlers whose
        # every effect is in the database (a rolled-back batch is simply handled again).
        self._batch = batch_transactions
        self._stopping = False
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0

    def stop(self) -> None:
        """Finish the batch in hand (and commit its offsets), then return from run()."""
        self._stopping = True

    async def run(self) -> None:
        await self._sub.start()
        try:
            while not self._stopping:
                batches = await self._sub.poll(0.5)
                if batches:
                    await asyncio.gather(*(self._process_partition(r) for r in batches.values()))
        finally:
            await self._sub.stop()

    async def _process_partition(self, records: list[IncomingRecord]) -> None:
        if not (self._batch and len(records) > 1 and await self._handle_batch(records)):
            for record in records:
                await self.process(record)
        if self._before_commit is not None:
            await self._before_commit()
        await self._sub.commit({(records[-1].topic, records[-1].partition): records[-1]})

    async def process(self, record: IncomingRecord) -> None:
        """Handle one record: at most once in effect, however often it is delivered."""
        try:
            envelope = Envelope.from_bytes(record.value)
            message = envelope.message()
        except Exception as exc:
            await self._dead_letter(record, f"undecodable message: {exc}", attempts=1)
            return
        handler = self._handlers.get(type(message))
        if handler is None:
            return  # not ours: e.g. the orchestrator ignores events no saga waits for
        last_error = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._handle_once(envelope, message, handler)
                return
            except PermanentError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                break
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "%s failed on attempt %d/%d: %s",
                    envelope.type,
                    attempt,
                    self._max_attempts,
                    last_error,
                )
                if attempt < self._max_attempts:
                    await asyncio.sleep(self._delay * 2 ** (attempt - 1))
        await self._dead_letter(record, last_error, attempts=attempt)

    async def _handle_batch(self, records: list[IncomingRecord]) -> bool:
        """Handle a whole batch in one transaction; False (nothing kept) if anything fails."""
        try:
            decoded = [Envelope.from_bytes(r.value) for r in records]
            work = [(e, e.message()) for e in decoded]
            async with self._uow_factory() as uow:
                handled = 0
                for envelope, message in work:
                    handler = self._handlers.get(type(message))
                    if handler is not None:
                        handled += await self._handle_in(uow, envelope, message, handler)
                await uow.commit()
        except Exception as exc:
            log.debug("batch of %d fell back to one by one: %s", len(records), exc)
            return False
        self.handled += handled
        return True

    async def _handle_once(self, envelope: Envelope, message: Message, handler: Handler) -> None:
        async with self._uow_factory() as uow:
            handled = await self._handle_in(uow, envelope, message, handler)
            await uow.commit()
        self.handled += handled

    async def _handle_in(
        self, uow: UnitOfWork, envelope: Envelope, message: Message, handler: Handler
    ) -> int:
        """Handle inside the caller's transaction; 1 if handled, 0 if it was a duplicate."""
        if not await uow.first_delivery(envelope):
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

    async def _dead_letter(self, record: IncomingRecord, error: str, *, attempts: int) -> None:
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
        await self._transport.publish(
            [OutgoingRecord(topic=self._dlq, key=record.key, value=record.value, headers=headers)]
        )
        self.dead_lettered += 1
