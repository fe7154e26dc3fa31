"""Topic names. A prefix lets tests and tenants share one broker without crosstalk."""

from __future__ import annotations

from certrotate_shared.envelope import Command, Message

SERVICES = ("orchestrator", "replication", "certificates", "client-monitor")


def commands_topic(service: str, prefix: str = "certrotate") -> str:
    """The topic a worker service consumes its commands from."""
    return f"{prefix}.{service}.commands"


def events_topic(prefix: str = "certrotate") -> str:
    """The topic every service publishes its events to; the orchestrator consumes it."""
    return f"{prefix}.events"


def dlq_topic(prefix: str = "certrotate") -> str:
    """Where poison messages go, with headers saying why."""
    return f"{prefix}.dlq"


def topic_for(message: Message, prefix: str = "certrotate") -> str:
    """Route a message: commands to their service's topic, events to the events topic."""
    if isinstance(message, Command):
        return commands_topic(message.route(), prefix)
    return events_topic(prefix)


def all_topics(prefix: str = "certrotate") -> list[str]:
    """Every topic the system uses (created up front with enough partitions)."""
    workers = [s for s in SERVICES if s != "orchestrator"]
    return [commands_topic(s, prefix) for s in workers] + [events_topic(prefix), dlq_topic(prefix)]
