"""A rotation's retention is over: the workers purge what they kept of it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from certrotate_shared.registry import Command, Event, register


@register
class PurgeRotationRecords(Command):
    """The orchestrator's retention job: this rotation ended at `ended_at` and its retention
    period is over; the worker purges its own records of it once its own retention (counted
    from the same end) is over too."""

    target_service: Literal["replication", "client-monitor"]
    ended_at: datetime

    def route(self) -> str:
        return self.target_service


@register
class RotationRecordsPurged(Event):
    """What a worker deleted of a rotation's records (rows per table), and what it keeps."""

    service: Literal["replication", "client-monitor"]
    counts: dict[str, int]
    kept: str = ""
