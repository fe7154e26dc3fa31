"""Every message of certrotate; importing this package registers them all."""

from certrotate_shared.messages import (
    certificates,
    client_monitor,
    dead_letters,
    operator_tasks,
    orchestrator,
    replication,
)

__all__ = [
    "certificates",
    "client_monitor",
    "dead_letters",
    "operator_tasks",
    "orchestrator",
    "replication",
]
