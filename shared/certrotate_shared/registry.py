"""Message base classes and the registry from (type, version) to message class.

The message modules (`certrotate_shared.messages`) register their classes here; looking one up
goes through that package, which imports every module first, so the registry is complete by
the time it is read and no module imports the package that imports it."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict


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


def registered() -> dict[tuple[str, int], type[Message]]:
    """The classes registered so far (complete once `certrotate_shared.messages` is imported)."""
    return dict(_REGISTRY)
