"""Every message of certrotate; importing this package registers them all."""

from certrotate_shared.messages import (
    certificates,
    client_monitor,
    dead_letters,
    operator_tasks,
    orchestrator,
    replication,
    retention,
)
from certrotate_shared.registry import Message, UnknownMessageError, registered


def registered_messages() -> dict[tuple[str, int], type[Message]]:
    """Every message class, keyed by (type, version)."""
    return registered()


def message_class(type_: str, version: int) -> type[Message]:
    """The class registered for (type, version)."""
    try:
        return registered()[(type_, version)]
    except KeyError:
        raise UnknownMessageError(
            f"no message class for type={type_!r} version={version}"
        ) from None


__all__ = [
    "certificates",
    "client_monitor",
    "dead_letters",
    "message_class",
    "operator_tasks",
    "orchestrator",
    "registered_messages",
    "replication",
    "retention",
]
