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
import logging
from collections.abc import Awaitable, Callable, Mapping

from certrotate_shared.dead_letter_queue import DeadLetterQueue
from certrotate_shared.dispatch import Context, Dispatcher, FailureFor, Handler, handling
from certrotate_shared.envelope import Envelope, Message
from certrotate_shared.failures import backoff_delay, describe, is_transient, typed_failure
from certrotate_shared.transport.base import IncomingRecord, Subscription, Transport
from certrotate_shared.unit_of_work import UnitOfWork

# Handlers import what they get from here, where the consumer that calls them is.
__all__ = ["Context", "Handler", "MessageConsumer", "PermanentError"]

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """A message that can never succeed: answered (or parked) without further attempts."""


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
        commit_interval: float = 0.1,
    ) -> None:
        self._sub = subscription
        self._handlers = handlers
        self._dispatch = Dispatcher(
            uow_factory=uow_factory, handlers=handlers, service=service, failure_for=failure_for
        )
        self._dead_letters = DeadLetterQueue(
            transport=transport, dlq_topic=dlq_topic, service=service, events_topic=events_topic
        )
        self._service = service
        self._max_attempts = max_attempts
        self._delay = retry_base_delay
        self._max_delay = transient_max_delay
        # A test hook: runs after handling and before the offset commit (crash testing).
        self._before_commit = before_commit
        # One transaction per fetched batch instead of per message: only for handlers whose
        # every effect is in the database (a rolled-back batch is simply handled again).
        self._batch = batch_transactions
        # Offsets go to the broker at most this often (seconds), not after every poll: at a
        # message at a time, a commit per message was a third of the consumer's requests. A
        # crash loses at most this much progress, which the inbox drops when redelivered.
        self._commit_interval = commit_interval
        self._stopping = False
        # Partitions held back by a transient error: when to try again, and how often it failed.
        self._paused: dict[tuple[str, int], float] = {}
        self._holds: dict[tuple[str, int], tuple[int, int]] = {}
        self.serving = False
        self.dead_lettered = 0

    @property
    def handled(self) -> int:
        """Messages handled (duplicates not counted)."""
        return self._dispatch.handled

    @property
    def duplicates(self) -> int:
        """Deliveries of messages handled before (the inbox's or the command outcome's)."""
        return self._dispatch.duplicates

    @property
    def failed(self) -> int:
        """Commands answered with their typed failure event."""
        return self._dispatch.failed

    def stop(self) -> None:
        """Finish the batch in hand (and commit its offsets), then return from run()."""
        self._stopping = True

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed per (topic, partition); empty while not consuming."""
        return await self._sub.lag() if self.serving else {}

    async def run(self) -> None:
        await self._sub.start()
        self.serving = True
        loop = asyncio.get_running_loop()
        # Handled and not yet committed: the last record per partition, and since when.
        pending: dict[tuple[str, int], IncomingRecord] = {}
        since = 0.0
        # The offset commit on its way to the broker while the next records are handled
        # (their transactions committed before it was sent).
        committing: asyncio.Task[None] | None = None
        try:
            while not self._stopping:
                if committing is not None and committing.done():
                    landed, committing = committing, None
                    landed.result()  # a failed commit restarts the consumer (run() raises)
                self._resume_due()
                timeout = self._poll_timeout()
                if pending:
                    timeout = min(timeout, max(0.0, since + self._commit_interval - loop.time()))
                batches = await self._sub.poll(timeout)
                if batches:
                    done = await self._process_poll(list(batches.values()))
                    last = {(d.topic, d.partition): d for d in done if d is not None}
                    if last:
                        if self._before_commit is not None:
                            await self._before_commit()
                        if not pending:
                            since = loop.time()
                        pending.update(last)
                if pending and (self._stopping or loop.time() - since >= self._commit_interval):
                    if committing is not None:
                        await committing  # in order, and its failure surfaces here
                    # Not awaited before the next poll: a crash before it lands only
                    # redelivers what the inbox has recorded.
                    committing = asyncio.create_task(self._sub.commit(pending))
                    pending = {}
        finally:
            self.serving = False
            try:
                if committing is not None:
                    await committing
                if pending and self._stopping:  # a clean stop keeps its progress
                    await self._sub.commit(pending)
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

    async def _process_poll(
        self, batches: list[list[IncomingRecord]]
    ) -> list[IncomingRecord | None]:
        """Handle what a poll returned; per partition, the last record done (to commit).

        Batching: the records of every partition in one transaction, each partition's in its
        order. A handler may still touch another partition's saga (a rotation that frees its
        site moves on the one waiting for it): in one transaction it reads back what was
        queued earlier in it, and the saga row's version check guards the rest. Should the
        transaction fail, each partition is handled on its own, so that one failing record
        holds back only its partition (a slow one delays the whole poll's commit)."""
        if (
            self._batch
            and len(batches) > 1
            and await self._dispatch.handle_batch([r for b in batches for r in b])
        ):
            return [b[-1] for b in batches]
        return list(await asyncio.gather(*(self._process_partition(b) for b in batches)))

    async def _process_partition(self, records: list[IncomingRecord]) -> IncomingRecord | None:
        """Handle a partition's records in order; the last one done (to commit), if any."""
        done: IncomingRecord | None = None
        if self._batch and len(records) > 1 and await self._dispatch.handle_batch(records):
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
                await self._dispatch.handle_once(envelope, message, handler)
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
        if not await self._dispatch.answer_with_failure(envelope, message, last_error):
            await self._dead_letter(record, last_error, attempts=attempt, envelope=envelope)
        return True

    async def _dead_letter(
        self,
        record: IncomingRecord,
        error: str,
        *,
        attempts: int,
        envelope: Envelope | None = None,
    ) -> None:
        await self._dead_letters.park(record, error, attempts=attempts, envelope=envelope)
        self.dead_lettered += 1
