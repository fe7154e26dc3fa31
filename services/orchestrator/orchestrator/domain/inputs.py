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


TimerKind = Literal["retry", "max_wait", "window", "exposure", "deadline"]


@dataclass(frozen=True)
class TimerFired:
    kind: TimerKind
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
    principal: str | None = None  # the approver's API token id


@dataclass(frozen=True)
class ReplayRequested:
    """An operator re-published a parked command of this rotation: wait for its answer again."""

    by: str
    dead_letter_id: str
    message_id: str
    message_type: str
    # For a parked event: the command it answers.
    causation_id: str | None = None


@dataclass(frozen=True)
class DecisionMade:
    by: str
    decision: Literal["extend", "proceed", "abort", "retry", "compensate", "mark_done"]
    reason: str
    change_id: str | None = None
    principal: str | None = None  # the API token id of who decided
    extend_days: float | None = None
    # How many at-risk clients the operator accepts (the list itself goes in the history).
    accepted_count: int = 0


OperatorAction = (
    PauseRequested | ResumeRequested | CancelRequested | ApprovalGiven | DecisionMade
    | ReplayRequested
)  # fmt: skip
Input = EventArrived | TimerFired | OperatorAction


class ActionRejectedError(Exception):
    """An operator action that makes no sense in the saga's current state (HTTP 409)."""
