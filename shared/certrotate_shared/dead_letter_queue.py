"""Parking a record that cannot be handled in the DLQ, and reporting the parking on the events
topic (MessageDeadLettered) so that its saga does not wait on it."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from certrotate_shared import metrics
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord, Transport

# The consumer's logger still, as before this module was split from it: log filters keep working.
log = logging.getLogger("certrotate_shared.consumer")

# Dead-letter reports get an id derived from where the record was, so that a record parked
# twice (a crash between the DLQ publish and the offset commit) is reported once.
_DEAD_LETTER_IDS = uuid.UUID("6f1d2a52-3c1b-4a0e-9a57-8e1f6b2d4c10")


class DeadLetterQueue:
    """A service's DLQ topic, and its events topic for the reports (None: no reports)."""

    def __init__(
        self, *, transport: Transport, dlq_topic: str, service: str, events_topic: str | None
    ) -> None:
        self._transport = transport
        self._dlq = dlq_topic
        self._events = events_topic
        self._service = service

    async def park(
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


def _best_effort(value: bytes) -> dict[str, Any]:
    """What can be read of an envelope that did not decode: its JSON object, if it is one."""
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
