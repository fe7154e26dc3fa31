"""The message envelope: identity, causality and a typed payload.

The message classes and their registry live in `registry` and `messages`; they are re-exported
here, where most code has always imported them from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from certrotate_shared.messages import message_class, registered_messages
from certrotate_shared.registry import Command, Event, Message, UnknownMessageError, register

__all__ = [
    "Command",
    "Envelope",
    "Event",
    "Message",
    "UnknownMessageError",
    "message_class",
    "register",
    "registered_messages",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Envelope(BaseModel):
    """What travels on the wire: identity, causality and a typed payload."""

    model_config = ConfigDict(frozen=True)

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    saga_id: str
    correlation_id: str
    causation_id: str | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    payload: dict[str, Any]
    # Transport-independent metadata: the W3C trace context (traceparent, tracestate) of the
    # span that sent it, when tracing is on. Never anything a handler decides on.
    headers: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def wrap(
        cls,
        message: Message,
        *,
        saga_id: str,
        correlation_id: str | None = None,
        causation: Envelope | None = None,
        occurred_at: datetime | None = None,
        headers: dict[str, str] | None = None,
    ) -> Envelope:
        """Put a message in an envelope; causation links it to the message that caused it."""
        return cls(
            type=message.type_name(),
            version=message.schema_version,
            saga_id=saga_id,
            correlation_id=correlation_id or (causation.correlation_id if causation else saga_id),
            causation_id=str(causation.message_id) if causation else None,
            occurred_at=occurred_at or utcnow(),
            payload=message.model_dump(mode="json"),
            headers=headers or {},
        )

    def message(self) -> Message:
        """Decode the payload into its registered class (validates it)."""
        return message_class(self.type, self.version).model_validate(self.payload)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        return cls.model_validate_json(data)
