"""Handing a message to its handler inside a transaction: the inbox's deduplication, the
command outcome recorded with the handler's effects, and a fetched batch in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from certrotate_shared import metrics, tracing
from certrotate_shared.envelope import Command, Envelope, Event, Message
from certrotate_shared.logs import log_context
from certrotate_shared.transport.base import IncomingRecord
from certrotate_shared.unit_of_work import UnitOfWork

# The consumer's logger still, as before this module was split from it: log filters keep working.
log = logging.getLogger("certrotate_shared.consumer")


@dataclass
class Context:
    """What a handler gets besides its message: the transaction and the envelope it came in."""

    uow: UnitOfWork
    envelope: Envelope

    def emit(self, message: Message) -> Envelope:
        """Queue a message caused by the one being handled (same saga, same correlation)."""
        return self.uow.emit(message, saga_id=self.envelope.saga_id, causation=self.envelope)


Handler = Callable[[Message, Context], Awaitable[Event | None]]

FailureFor = Callable[[Message, str], Event | None]


class Dispatcher:
    """Run handlers in units of work, each message at most once in effect."""

    def __init__(
        self,
        *,
        uow_factory: Callable[[], UnitOfWork],
        handlers: Mapping[type[Message], Handler],
        service: str,
        failure_for: FailureFor,
    ) -> None:
        self._uow_factory = uow_factory
        self._handlers = handlers
        self._service = service
        self._failure_for = failure_for
        self.handled = 0
        self.duplicates = 0
        self.failed = 0

    async def answer_with_failure(self, envelope: Envelope, message: Message, error: str) -> bool:
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

    async def handle_batch(self, records: list[IncomingRecord]) -> bool:
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

    async def handle_once(self, envelope: Envelope, message: Message, handler: Handler) -> None:
        """Handle one message in its own transaction."""
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
