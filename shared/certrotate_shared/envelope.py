"""The message envelope and the registry from (type, version) to message class."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """A command or event payload: frozen, and tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: ClassVar[int] = 1
    topic_kind: ClassVar[str] = "events"

    @classmethod
    def type_name(cls) -> str:
        """The wire name of this message: the class name (VerbNoun or NounVerbed)."""
        return cls.__name__


class Command(Message):
    """A request to one worker service; carries the key that makes its side effect happen once."""

    service: ClassVar[str]
    topic_kind: ClassVar[str] = "commands"

    # saga id + step + attempt: workers report the recorded outcome when they see it again.
    idempotency_key: str

    def route(self) -> str:
        """The service whose commands topic carries this command."""
        return self.service


class Event(Message):
    """A fact a service reports; the orchestrator advances sagas on these."""


class UnknownMessageError(LookupError):
    """Raised for a (type, version) pair no class is registered for."""


_REGISTRY: dict[tuple[str, int], type[Message]] = {}

M = TypeVar("M", bound=type[Message])


def register(cls: M) -> M:
    """Class decorator: make a message class known to the envelope decoder."""
    key = (cls.type_name(), cls.schema_version)
    existing = _REGISTRY.get(key)
    if existing is not None and existing is not cls:
        raise ValueError(f"message {key} registered twice ({existing!r} and {cls!r})")
    _REGISTRY[key] = cls
    return cls


def registered_messages() -> dict[tuple[str, int], type[Message]]:
    """Every registered message class, keyed by (type, version)."""
    from certrotate_shared import messages  # noqa: F401  (importing registers them all)

    return dict(_REGISTRY)


def message_class(type_: str, version: int) -> type[Message]:
    """The class registered for (type, version)."""
    registered_messages()
    try:
        return _REGISTRY[(type_, version)]
    except KeyError:
        raise UnknownMessageError(
            f"no message class for type={type_!r} version={version}"
        ) from None


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
