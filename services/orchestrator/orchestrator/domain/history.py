"""A rotation's history, one typed entry per kind: what was sent, what came back, what fired,
who acted, and the saga's own notes.

The stored row (and so the API's history page) keeps the shape it always had: `kind`, `type`,
`step`, `message_id`, `causation_id`, `actor` and a JSON `detail`; each kind says which of them
it fills and what its detail holds. Entries are plain dataclasses: one is built for every
message of every transition, where a validating model would cost time for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast


@dataclass(frozen=True, kw_only=True)
class _Entry:
    kind: ClassVar[str]
    at: datetime
    type: str
    step: str | None = None
    message_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None

    def detail_json(self) -> dict[str, Any] | None:
        return None

    def row(self) -> dict[str, Any]:
        """The history row as stored."""
        return {
            "at": self.at, "kind": self.kind, "type": self.type, "step": self.step,
            "message_id": self.message_id, "causation_id": self.causation_id,
            "actor": self.actor, "detail": self.detail_json(),
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _MessageEntry(_Entry):
    message_id: str | None
    # The message's payload as published or received (a command names its site only).
    payload: dict[str, Any]

    def detail_json(self) -> dict[str, Any]:
        return self.payload


@dataclass(frozen=True, kw_only=True)
class CommandSent(_MessageEntry):
    """A command the saga (or an operator confirming a task) put in the outbox."""

    kind: ClassVar[str] = "command"


@dataclass(frozen=True, kw_only=True)
class AlertRaised(_MessageEntry):
    """An event the saga published for people (the verification-exposure alert)."""

    kind: ClassVar[str] = "alert"


@dataclass(frozen=True, kw_only=True)
class EventReceived(_MessageEntry):
    """An event that moved the saga or that it recorded (an operator task)."""

    kind: ClassVar[str] = "event"


@dataclass(frozen=True, kw_only=True)
class EventIgnored(_MessageEntry):
    """An event that answered nothing the saga waited for (stale or duplicate)."""

    kind: ClassVar[str] = "ignored"


@dataclass(frozen=True, kw_only=True)
class TimerWentOff(_Entry):
    """A durable timer fired; `type` is its kind. `ignored`: it was no longer set."""

    kind: ClassVar[str] = "timer"
    due_at: datetime
    ignored: bool

    def detail_json(self) -> dict[str, Any]:
        return {"due_at": self.due_at.isoformat(), "ignored": self.ignored}


@dataclass(frozen=True, kw_only=True)
class OperatorActed(_Entry):
    """A person's request or action; `type` names it, `detail` holds what they gave."""

    kind: ClassVar[str] = "operator"
    detail: dict[str, Any]

    def detail_json(self) -> dict[str, Any]:
        return self.detail


@dataclass(frozen=True, kw_only=True)
class Noted(_Entry):
    """A sentence the saga wrote about a transition, for the people following it."""

    kind: ClassVar[str] = "note"
    type: str = "note"
    text: str

    def detail_json(self) -> dict[str, Any]:
        return {"text": self.text}


HistoryEntry = (
    CommandSent | AlertRaised | EventReceived | EventIgnored | TimerWentOff | OperatorActed | Noted
)
_MESSAGES: dict[str, type[_MessageEntry]] = {
    k.kind: k for k in (CommandSent, AlertRaised, EventReceived, EventIgnored)
}


def entry_from_row(row: Mapping[str, Any]) -> HistoryEntry:
    """A stored history row as its typed entry (ValueError for a kind this code does not know)."""
    kind = row["kind"]
    ids = {
        "at": row["at"], "type": row["type"], "step": row.get("step"),
        "message_id": row.get("message_id"), "causation_id": row.get("causation_id"),
        "actor": row.get("actor"),
    }  # fmt: skip
    detail = row.get("detail") or {}
    if kind in _MESSAGES:
        return cast(HistoryEntry, _MESSAGES[kind](**ids, payload=detail))
    if kind == "timer":
        return TimerWentOff(
            **ids, due_at=datetime.fromisoformat(detail["due_at"]), ignored=detail["ignored"]
        )
    if kind == "operator":
        return OperatorActed(**ids, detail=detail)
    if kind == "note":
        return Noted(**ids, text=detail["text"])
    raise ValueError(f"unknown history kind {kind!r}")
