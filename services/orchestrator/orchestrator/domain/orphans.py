"""Clients a rotation cut off: those still verifying the old certificate when it was swapped."""

from __future__ import annotations

from orchestrator.domain.state import SagaState


def orphaned_outside_risk(rotation: SagaState) -> int:
    """Clients the rotation cut off beyond the risk accepted on its record.

    Once a server serves the new certificate, every client still verifying the old one (the
    at-risk count of the step-3 reading the swap went ahead on) is cut off. An approver's
    "proceed" accepted a named list of them; anything beyond it was never accepted."""
    if not any(server.status == "updated" for server in rotation.servers):
        return 0  # nothing swapped, or rolled back: the old certificate is served
    wait = rotation.current_wait("await_disable_propagation")
    at_risk = wait.reading.orphan_risk if wait and wait.reading else 0
    acceptance = rotation.risk_acceptance
    accepted = acceptance.accepted_count if acceptance else rotation.options.orphan_risk_budget
    return max(0, at_risk - accepted)


def accepted_risk(rotation: SagaState) -> int:
    acceptance = rotation.risk_acceptance
    return acceptance.accepted_count if acceptance else rotation.options.orphan_risk_budget
