"""Nothing is taken as done that did not happen: verification restores carry the recorded
originals and must cover them; a disable that changed nothing is a failure."""

from __future__ import annotations

import pytest

from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationSet,
    CheckCertificateVerification,
    GroupVerification,
    LocationVerification,
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
    assert [g.group_id for g in d.state.restored_groups] == list(answer)
    assert d.state.verification_restored_at is None
    d.fire("retry")
    assert d.awaited.idempotency_key.endswith(":enable_verification:2")
    d.answer(restored(*answer))
    assert d.state.status == "paused"
    assert d.state.pending_decision is not None
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
    assert d.state.pending_decision is not None
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
    assert "no group" in (d.state.reason or "")
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


def found_on(*group_ids: str) -> CertificateVerificationChecked:
    return CertificateVerificationChecked(
        site="site-a",
        enabled=[
            LocationVerification(group_id=g, full_path_name=f"My Company\\{g}", location_id="L1",
                                 secure_communications=True)
            for g in group_ids
        ],
        locations_checked=2,
    )  # fmt: skip


def test_verification_is_checked_after_the_gates_and_before_the_swap():
    d = driver()
    d.run_to("check_verification")
    check = d.awaited
    assert isinstance(check, CheckCertificateVerification)
    assert not d.commands(UpdateServerCertificate)
    d.ok()  # off everywhere
    assert isinstance(d.awaited, UpdateServerCertificate)


def test_a_re_enabled_location_sends_the_rotation_back_to_step_2_without_a_swap():
    d = driver()
    d.run_to("check_verification")
    first = {g.group_id: g.original_values for g in d.state.disabled_groups}
    d.answer(found_on("G1"))
    assert not d.commands(UpdateServerCertificate)
    disable = d.awaited
    assert isinstance(disable, SetCertificateVerification) and disable.mode == "disable"
    # A new key: the worker must do it again, not answer the first pass's outcome.
    assert disable.idempotency_key == f"{d.state.saga_id}:disable_verification/2:1"
    assert not d.state.propagation_gate_passed
    finding = d.state.reenabled_findings[0]
    assert finding.locations == ["My Company\\G1 (L1)"]
    assert any("My Company\\G1 (L1)" in n for n in d.decisions[-1].notes)
    # The second disable sees our own "off" as current: the first originals are kept.
    again = [g.model_copy(update={"original_values": {"L1": False},
                                  "target_serial": f"{g.group_id}-disable-2"})
             for g in groups("disable")]  # fmt: skip
    d.answer(CertificateVerificationSet(site="site-a", mode="disable", groups=again))
    assert {g.group_id: g.original_values for g in d.state.disabled_groups} == first
    watch = d.awaited
    assert isinstance(watch, AwaitPolicyPropagation)
    assert {g.target_serial for g in watch.groups} == {"G0-disable-2", "G1-disable-2"}
    d.ok()  # propagated
    d.ok()  # checked: off everywhere now
    assert isinstance(d.awaited, UpdateServerCertificate)
    finish(d)
    assert d.state.status == "completed"
    restore = next(c for c in d.commands(SetCertificateVerification) if c.mode == "restore")
    assert restore.originals is not None
    assert {g.group_id: g.original_values for g in restore.originals} == first


def test_after_the_bounded_loops_the_rotation_pauses_for_a_decision():
    d = SagaDriver(options=RotationOptions(retry=RETRY, max_reenable_loops=2))
    for _ in range(2):
        d.run_to("check_verification")
        d.answer(found_on("G0"))
        assert d.state.step == "disable_verification"
    d.run_to("check_verification")
    d.answer(found_on("G0", "G1"))
    pending = d.state.pending_decision
    assert pending is not None
    assert d.state.status == "paused" and pending.kind == "verification_reenabled"
    assert pending.options == ["retry", "compensate", "proceed"]
    assert "My Company\\G0 (L1), My Company\\G1 (L1)" in pending.reason
    assert not d.commands(UpdateServerCertificate)
    d.apply(DecisionMade(by="ops", decision="compensate", reason="someone keeps turning it on"))
    finish(d)
    assert d.state.status == "compensated"
    assert len(d.state.reenabled_findings) == 3


def test_proceed_despite_re_enabled_verification_is_a_named_risk_on_the_record():
    d = SagaDriver(options=RotationOptions(retry=RETRY, max_reenable_loops=1))
    d.run_to("check_verification")
    d.answer(found_on("G0"))
    d.run_to("check_verification")
    d.answer(found_on("G0"))
    d.apply(DecisionMade(by="lead", decision="proceed", reason="G0 is a lab, accepted",
                         change_id="CHG7"))  # fmt: skip
    assert d.state.risk_acceptance is not None
    assert d.state.risk_acceptance.step == "check_verification"
    assert d.state.risk_acceptance.reason == "G0 is a lab, accepted"
    assert isinstance(d.awaited, UpdateServerCertificate)


def test_a_group_that_can_never_be_restored_leaves_a_named_way_out():
    # An administrator deleted G1 during the rotation: no restore can ever cover it.
    d = driver()
    d.run_to("enable_verification")
    d.answer(restored("G0"))
    d.fire("retry")
    d.answer(restored("G0"))
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.options == ["extend", "proceed"]
    d.apply(DecisionMade(by="lead", decision="proceed", reason="G1 was deleted (CHG9)"))
    # Step 6 still watches what was restored; the step says who went on and why.
    watch = d.awaited
    assert isinstance(watch, AwaitPolicyPropagation)
    assert [g.group_id for g in watch.groups] == ["G0"]
    step = [s for s in d.state.steps if s.name == "enable_verification"][-1]
    assert step.detail == "operator proceeded: G1 was deleted (CHG9)"
    finish(d)
    assert d.state.status == "completed"
