"""The kinds of row in the saga table, and what a row carries besides its name.

A row carries its behaviour, as in Eventuate's `step().invokeParticipant(...).onReply(...)
.withCompensation(...)`: the command it sends, what its success and its failure record, which
servers it expands to, what an abandoned command of it is assumed to have done, and the rows
that compensate it. The interpreter (`saga.py` and the modules it uses) never asks which step
it is at, only what kind of row and what the row says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from certrotate_shared.envelope import Command, Event
from certrotate_shared.messages.certificates import GroupVerification
from orchestrator.domain.state import DecisionKind, SagaState

# What to do when a step's retries run out (or its failure is not retryable):
#   fail        end as failed: nothing can have been changed
#   compensate  undo what was done, newest first: the certificate of every server touched
#               (the failing one included), then verification, then replication
#   pause       wait for an operator decision (forward recovery only, or a wait that stalled)
# There is no separate "rollback": putting the certificate back is the compensation of the
# swap (its row's `compensation`), run first whenever a server was touched, whichever step
# failed, so the two always did the same and the table now says so.
Exhausted = Literal["fail", "compensate", "pause"]
# Which answer deadline applies to a step's command (RotationOptions.answer_deadlines).
AnswerKind = Literal["sepm_call", "host_operation", "restore_replication"]

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Refuted:
    """A success that is not the success it claims (the step fails with this reason)."""

    reason: str
    # A verification change that did not cover what it should may work when re-run.
    retryable: bool = False


@dataclass(frozen=True)
class Regressed:
    """Done once and undone since by someone else: the saga goes back to the row's `redo_from`
    step, or (`pause` set: too many times already) a person decides."""

    note: str
    redo: str
    pause: str | None
    kind: DecisionKind = "verification_reenabled"


# What a success handler says: None when it is the success it claims.
Verdict = Refuted | Regressed | None


@dataclass(frozen=True)
class Reply(Generic[E]):
    """An answer a row waits for and the handler that records what it tells."""

    event: type[E]
    record: Callable[[SagaState, E, datetime], Any]


@dataclass(frozen=True, kw_only=True)
class Step:
    """A row of the table. Every kind answers the same questions, so the walker never has to
    ask which step it is at."""

    name: str
    number: int | None  # the vendor procedure's step number (docs/design.md), None if not one
    title: str
    skip: Callable[[SagaState], bool] | None = None
    exhausted: Exhausted = "pause"
    # An operator may mark the step done (with a reason) when its answer never comes: only
    # where nothing later relies on what the answer would have told the saga.
    may_mark_done: bool = False
    # When its retries run out, an approver may go on without what it could not do (a group
    # deleted during the rotation can never be restored), a named risk on the record.
    may_proceed: bool = False
    # An operator's "proceed" here accepts the orphan risk on the record and opens the
    # propagation gate.
    proceed_accepts_risk: bool = False

    @property
    def sends(self) -> bool:
        return False

    @property
    def per_server(self) -> bool:
        return False

    @property
    def waits_for_propagation(self) -> bool:
        return False

    @property
    def succeeded(self) -> type[Event] | None:
        return None

    @property
    def failed(self) -> type[Event] | None:
        return None


@dataclass(frozen=True, kw_only=True)
class Invoke(Step):
    """Send a participant a command and wait for its success or failure."""

    send: Callable[[SagaState, str, datetime], Command]
    on_success: Reply[Any]
    on_failure: Reply[Any]
    # None: no answer deadline (a propagation wait has its own maximum wait instead).
    answer: AnswerKind | None = None
    # Rows that undo this one, in the order they run (compensation walks the rows backwards).
    compensation: tuple[Invoke, ...] = ()
    # Assume an abandoned command (cancelled in flight) did all it could; record that.
    abandoned: Callable[[SagaState], None] | None = None
    # What an answer to an abandoned command adds to what compensation must undo; None when
    # the event tells nothing of the kind.
    late: Callable[[SagaState, Event], str | None] | None = None
    # The step that re-does what a Regressed verdict found undone.
    redo_from: str | None = None
    # The command waits for the maintenance window to be open.
    in_window: bool = False

    @property
    def sends(self) -> bool:
        return True

    @property
    def succeeded(self) -> type[Event]:
        return self.on_success.event

    @property
    def failed(self) -> type[Event]:
        return self.on_failure.event

    def command(self, s: SagaState, key: str, now: datetime) -> Command:
        return self.send(s, key, now)


@dataclass(frozen=True, kw_only=True)
class PerServer(Invoke):
    """The same command once per server, one server after another."""

    servers: Callable[[SagaState], list[str]]
    # Called as a server's command goes out, and once every server has succeeded.
    starting: Callable[[SagaState, str], None] | None = None
    finished: Callable[[SagaState], None] | None = None

    @property
    def per_server(self) -> bool:
        return True

    def server(self, s: SagaState) -> str | None:
        names = self.servers(s)
        return names[s.server_index] if s.server_index < len(names) else None


@dataclass(frozen=True, kw_only=True)
class Watch(Invoke):
    """Watch a policy reach the fleet; a stalled or overlong wait is a person's decision."""

    watched: Callable[[SagaState], list[GroupVerification]]
    stalled: DecisionKind = "propagation_wait"

    @property
    def waits_for_propagation(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class Gate(Step):
    """No command: the saga's own checks before the swap (gates.py)."""

    # The wait whose reading the gates go by, and where "extend" goes back to.
    watches: str
    proceed_accepts_risk: bool = True
