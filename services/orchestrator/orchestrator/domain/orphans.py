"""A rotation's clients: reached, pending, at risk before its swap, and cut off by it."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.state import SagaState
from orchestrator.domain.steps import GATE, risk_wait


def orphaned_outside_risk(rotation: SagaState) -> int:
    """Clients the rotation cut off beyond the risk accepted on its record.

    Once a server serves the new certificate, every client still verifying the old one (the
    at-risk count of the step-3 reading the swap went ahead on) is cut off. An approver's
    "proceed" accepted a named list of them; anything beyond it was never accepted."""
    if not any(server.status == "updated" for server in rotation.servers):
        return 0  # nothing swapped, or rolled back: the old certificate is served
    wait = risk_wait(rotation)
    at_risk = wait.reading.orphan_risk if wait and wait.reading else 0
    acceptance = rotation.risk_acceptance
    accepted = acceptance.accepted_count if acceptance else rotation.options.orphan_risk_budget
    return max(0, at_risk - accepted)


def accepted_risk(rotation: SagaState) -> int:
    acceptance = rotation.risk_acceptance
    return acceptance.accepted_count if acceptance else rotation.options.orphan_risk_budget


def site_clients(rotation: SagaState) -> dict[str, Any] | None:
    """The rotation's latest reading of its fleet; None before its first watch reported."""
    wait = rotation.current_wait()
    reading = wait.reading if wait else None
    if wait is None or reading is None:
        return None
    swapped = any(server.status == "updated" for server in rotation.servers)
    # Only before the swap is a pending client "at risk"; after it, it was reached or cut off.
    before_swap = wait.step == GATE.watches and not swapped
    return {
        "step": wait.step,
        "total": reading.total,
        "reached": reading.reached,
        "pending": reading.pending_online + reading.pending_offline,
        "at_risk": reading.orphan_risk if before_swap else 0,
        "observed_at": reading.observed_at.isoformat(),
    }
