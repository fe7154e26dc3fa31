"""Transports: Kafka for distributed mode, a durable in-process log for embedded mode."""

from certrotate_shared.transport.base import IncomingRecord, OutgoingRecord, Subscription, Transport

__all__ = ["IncomingRecord", "OutgoingRecord", "Subscription", "Transport"]
