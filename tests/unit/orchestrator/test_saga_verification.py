"""Nothing is taken as done that did not happen: verification restores carry the recorded
originals and must cover them; a disable that changed nothing is a failure."""

from __future__ import annotations

import pytest

from certrotate_shared.messages.certificates import (
    CertificateVerificationSet,
    GroupVerification,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from orchestrator.domain.inputs import DecisionMade
from orchestrator.domain.state import RetryPolicy, RotationOptions
from orchestrator.domain.verification import merge_disabled
from tests.unit.orchestrator.saga_driver import SagaDriver, groups
from tests.unit.orchestrator.test_saga_transitions import finish

pytestmark = pytest.mark.unit

RETRY = RetryPolicy(base_seconds=10, max_seconds=60, max_attempts=2)


def driver() -> SagaDriver:
    return SagaDriver(options=RotationOptions(retry=RETRY))


def restored(*group_ids: str) -> CertificateVerificationSet:
    return CertificateVerificationSet(
        site="site-a",
        mode="restore",
        groups=[g for g in groups("restore") if g.group_id in group_ids],
    )


def test_the_restore_carries_the_originals_recorded_at_step_2():
    d = driver()
    d.run_to("enable_verification")
    restore = d.awaited
    assert isinstance(restore, SetCertificateVerification) and restore.mode == "restore"
    assert restore.originals == d.state.disabled_groups
    assert {g.group_id: g.original_values for g in restore.originals} == {
        "G0": {"L1": True},
        "G1": {"L1": True},
    }


@pytest.mark.parametrize(("answer", "why"), [((), "no group"), (("G0",), "My Company\\G1")])
def test_an_empty_or_partial_restore_is_retried_then_paused_never_completed(answer, why):
    d = driver()
    d.run_to("enable_verification")
    d.answer(restored(*answer))
    assert d.state.step == "enable_verification" and "retry" in d.state.timers
    assert d.state.restored_groups == [] and d.state.verification_restored_at is None
    d.fire("retry")
    assert d.awaited.idempotency_key.endswith(":enable_verification:2")
    d.answer(restored(*answer))
    assert d.state.status == "paused"
    assert d.state.pending_decision.kind == "step_failed"
    assert why in d.state.pending_decision.reason
    assert not d.commands(AwaitPolicyPropagation)[1:], "step 6 must not start"
    # The worker gets it right on the operator's retry: step 6 runs, then the rotation ends.
    d.apply(DecisionMade(by="ops", decision="extend", reason="SEPM fixed"))
    d.ok()
    assert d.state.step == "await_enable_propagation"
    finish(d)
    assert d.state.status == "completed"


def test_a_partial_restore_during_compensation_pauses_instead_of_compensated():
    d = driver()
    d.run_to("update_certificate")
    d.fail(retryable=False)  # the swap failed: roll back, then restore verification
    d.ok()  # rolled back
    assert d.state.step == "restore_verification"
    d.answer(restored("G1"))
    d.fire("retry")
    d.answer(restored("G1"))
    assert d.state.status == "paused" and d.state.phase == "compensation"
    assert "My Company\\G0" in d.state.pending_decision.reason


def test_a_disable_that_changed_no_group_is_a_failure_not_a_wait():
    d = driver()
    d.run_to("disable_verification")
    empty = CertificateVerificationSet(site="site-a", mode="disable", groups=[])
    d.answer(empty)
    assert "retry" in d.state.timers and not d.commands(AwaitPolicyPropagation)
    d.fire("retry")
    d.answer(empty)
    assert d.state.phase == "compensation"
    assert "no group" in d.state.reason
    finish(d)
    assert d.state.status == "compensated"
    assert not d.commands(UpdateServerCertificate)


def test_a_second_disable_keeps_the_first_recorded_originals():
    d = driver()
    d.run_to("disable_verification")
    d.ok()
    first = {g.group_id: g.original_values for g in d.state.disabled_groups}
    # Our own "off" is what a second disable sees as the current value; G2 is new.
    again = [
        GroupVerification(group_id="G0", full_path_name="My Company\\G0",
                          original_values={"L1": False}, target_serial="G0-disable-2"),
        GroupVerification(group_id="G2", full_path_name="My Company\\G2",
                          original_values={"L9": True}, target_serial="G2-disable-2"),
    ]  # fmt: skip
    merged = {g.group_id: g for g in merge_disabled(d.state.disabled_groups, again)}
    assert merged["G0"].original_values == first["G0"]
    assert merged["G0"].target_serial == "G0-disable-2"
    assert merged["G1"].original_values == first["G1"]
    assert merged["G2"].original_values == {"L9": True}
