"""A message parked in the DLQ, reported to the saga it belongs to so that nobody waits on it."""

from __future__ import annotations

from typing import Any

from certrotate_shared.registry import Event, register


@register
class MessageDeadLettered(Event):
    """Published (with the parked message's saga id) by the consumer that parked it.

    The orchestrator pauses the rotation with the reason; `certrotate dlq replay` re-sends the
    parked message once the cause is fixed.
    """

    service: str  # the consumer that gave up on it
    message_id: str
    message_type: str
    idempotency_key: str | None = None
    topic: str
    partition: int
    offset: int
    attempts: int
    error: str
    # The parked envelope as it was received (messages never carry secrets), so that the
    # orchestrator can show it and re-publish it to `topic` on an operator's replay.
    envelope: dict[str, Any]
