"""The propagation rows (steps 3 and 6, and the wait after a restore): watch a policy reach
the fleet, and what each answer records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from certrotate_shared.envelope import Command
from certrotate_shared.messages.certificates import GroupVerification
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    PolicyPropagated,
    PropagationCounts,
    PropagationWatchFailed,
)
from orchestrator.domain.state import PropagationReading, PropagationWait, SagaState
from orchestrator.domain.step_kinds import Reply, Watch

Groups = Callable[[SagaState], list[GroupVerification]]


def watch(
    name: str, number: int, title: str, *, groups: Groups, opens_gate: bool = False, **row: Any
) -> Watch:
    """A row that watches `groups` reach their target serials; `opens_gate`: this wait is the
    one the gates before the swap go by."""

    def send(s: SagaState, key: str, now: datetime) -> Command:
        wait = s.current_wait(s.step)
        deadline = wait.deadline if wait else now + timedelta(days=s.options.max_wait_days)
        return AwaitPolicyPropagation(
            idempotency_key=key,
            site=s.target,
            watch_id=key,
            groups=[g.as_target() for g in groups(s)],
            stale_horizon_days=s.options.stale_horizon_days,
            threshold=s.options.propagation_threshold,
            deadline=deadline,
        )

    return Watch(
        name=name, number=number, title=title, send=send, watched=groups,
        on_success=Reply(PolicyPropagated, opened if opens_gate else propagated),
        on_failure=Reply(PropagationWatchFailed, failed),
        proceed_accepts_risk=opens_gate, **row,
    )  # fmt: skip


def propagated(s: SagaState, event: PolicyPropagated, now: datetime) -> None:
    wait = read(s, event)
    if wait is not None:
        wait.outcome, wait.finished_at = "propagated", now
    s.timers.pop("max_wait", None)
    s.pending_decision = None


def opened(s: SagaState, event: PolicyPropagated, now: datetime) -> None:
    propagated(s, event, now)
    s.propagation_gate_passed = True


def failed(s: SagaState, event: PropagationWatchFailed, now: datetime) -> str:
    wait = next((w for w in s.waits if w.watch_id == event.watch_id), None)
    if wait is not None:
        wait.outcome, wait.finished_at, wait.detail = "failed", now, event.reason
    return event.reason


def read(s: SagaState, event: PropagationCounts) -> PropagationWait | None:
    """Keep the latest reading on the wait it belongs to."""
    wait = next((w for w in reversed(s.waits) if w.watch_id == event.watch_id), None)
    if wait is None:
        wait = s.current_wait(s.step)
    if wait is not None:
        wait.reading = PropagationReading.model_validate(event.model_dump())
    return wait
