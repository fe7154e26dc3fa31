"""What can move a saga: a worker's event, a timer, or an operator's action."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from certrotate_shared.envelope import Event


@dataclass(frozen=True)
class EventArrived:
    event: Event
    message_id: str
    causation_id: str | None


@dataclass(frozen=True)
class TimerFired:
    kind: Literal["retry", "max_wait", "window", "exposure"]
    due_at: datetime


@dataclass(frozen=True)
class PauseRequested:
    by: str
    reason: str = ""


@dataclass(frozen=True)
class ResumeRequested:
    by: str


@dataclass(frozen=True)
class CancelRequested:
    by: str
    reason: str


@dataclass(frozen=True)
class ApprovalGiven:
    by: str
    note: str = ""


@dataclass(frozen=True)
class DecisionMade:
    by: str
    decision: Literal["extend", "proceed", "abort"]
    reason: str
    change_id: str | None = None
    extend_days: float | None = None
    # How many at-risk clients the operator accepts (the list itself goes in the history).
    accepted_count: int = 0


OperatorAction = PauseRequested | ResumeRequested | CancelRequested | ApprovalGiven | DecisionMade
Input = EventArrived | TimerFired | OperatorAction


class ActionRejectedError(Exception):
    """An operator action that makes no sense in the saga's current state (HTTP 409)."""
