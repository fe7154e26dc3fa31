"""Approvals and risk acceptances are on the record with the token that gave them."""

from __future__ import annotations

import pytest

from certrotate_shared.messages.certificates import UpdateServerCertificate
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from orchestrator.domain.inputs import ApprovalGiven, DecisionMade
from orchestrator.domain.state import RotationOptions
from tests.unit.orchestrator.saga_driver import SagaDriver, stalled

pytestmark = pytest.mark.unit


def test_an_approval_keeps_the_approvers_token_and_note():
    d = SagaDriver(options=RotationOptions(require_approval=True))
    d.run_to("gates")
    d.apply(ApprovalGiven(by="lead", note="CAB 42 ok", principal="tok-lead"))
    approval = d.state.approval
    assert approval is not None
    assert (approval.by, approval.note, approval.principal) == ("lead", "CAB 42 ok", "tok-lead")
    d.ok()
    assert isinstance(d.awaited, UpdateServerCertificate)


def test_a_proceed_keeps_the_reason_and_the_token_that_accepted_the_risk():
    d = SagaDriver()
    d.run_to("await_disable_propagation")
    d.answer(stalled(d.awaited_as(AwaitPolicyPropagation), orphan_risk=3))
    d.apply(DecisionMade(by="lead", decision="proceed", reason="laptops in storage",
                         accepted_count=3, principal="tok-lead"))  # fmt: skip
    accepted = d.state.risk_acceptance
    assert accepted is not None
    assert (accepted.by, accepted.reason, accepted.principal) == (
        "lead",
        "laptops in storage",
        "tok-lead",
    )
