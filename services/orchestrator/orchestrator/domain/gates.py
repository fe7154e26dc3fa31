"""The gates before the swap: propagation, orphan risk, approval and maintenance window."""

from __future__ import annotations

from orchestrator.domain.state import (
    SagaState,
)
from orchestrator.domain.steps import risk_wait
from orchestrator.domain.transition import Transition, pause, set_record_status
from orchestrator.domain.window import is_open, next_opening


def gate_orphan_risk(s: SagaState) -> int | None:
    """Clients that would be cut off if the swap ran now (latest reading of the step-3 wait)."""
    wait = risk_wait(s)
    return wait.reading.orphan_risk if wait and wait.reading else None


def evaluate(t: Transition) -> bool:
    """True when every gate is open; otherwise the saga pauses or waits (a durable timer for
    the window, an approval for the approver)."""
    s = t.s
    if not s.propagation_gate_passed:
        # Only PolicyPropagated or an operator's "proceed" opens this gate.
        reason = "the verification-off policy has not been confirmed on the clients"
        pause(t, "propagation_wait", reason, ["extend", "proceed", "abort"])
        return False
    at_risk = gate_orphan_risk(s) or 0
    if s.risk_acceptance is None and at_risk > s.options.orphan_risk_budget:
        pause(
            t,
            "orphan_risk",
            f"{at_risk} clients would be cut off by the swap (budget {s.options.orphan_risk_budget})",
            ["extend", "proceed", "abort"],
        )
        return False
    waiting: list[str] = []
    if s.options.require_approval and s.approval is None:
        waiting.append("approval")
    window = s.options.maintenance_window
    if window is not None and not is_open(window, t.now):
        waiting.append("maintenance_window")
        s.timers["window"] = next_opening(window, t.now)
    s.gate_waiting_for = waiting
    if waiting:
        set_record_status(s, "waiting")
        t.note(f"gates wait for: {', '.join(waiting)}")
        return False
    s.timers.pop("window", None)
    return True
