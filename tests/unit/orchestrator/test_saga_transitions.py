"""Every row of the saga table and every failure path, without I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certrotate_shared.envelope import Command
from certrotate_shared.messages.certificates import (
    PurgeCertificateBundle,
    RollbackServerCertificate,
    ServerCertificateUpdated,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    CancelPropagationWatch,
    PolicyPropagated,
)
from certrotate_shared.messages.orchestrator import VerificationExposureExceeded
from certrotate_shared.messages.replication import BreakReplication, RestoreReplication
from orchestrator.domain.inputs import (
    ActionRejectedError,
    ApprovalGiven,
    CancelRequested,
    DecisionMade,
    PauseRequested,
    ResumeRequested,
)
from orchestrator.domain.state import MaintenanceWindow, RetryPolicy, RotationOptions
from tests.unit.orchestrator.saga_driver import (
    NEW_FP,
    OLD_FP,
    SagaDriver,
    counts,
    progressed,
    stalled,
    success,
)

pytestmark = pytest.mark.unit


def names(driver: SagaDriver) -> list[str]:
    out = []
    for message in driver.commands():
        label = message.type_name()
        if isinstance(message, SetCertificateVerification):
            label += f"({message.mode})"
        if isinstance(message, UpdateServerCertificate | RollbackServerCertificate):
            label += f"({message.server.name})"
        out.append(label)
    return out


def test_happy_path_runs_the_vendor_procedure_in_order_and_completes():
    d = SagaDriver()
    while not d.state.terminal:
        d.ok()
    assert names(d) == [
        "InspectSite",
        "BreakReplication",
        "SetCertificateVerification(disable)",
        "AwaitPolicyPropagation",
        "CheckCertificateVerification",
        "UpdateServerCertificate(sepm-a1)",
        "UpdateServerCertificate(sepm-a2)",
        "SetCertificateVerification(restore)",
        "AwaitPolicyPropagation",
        "RestoreReplication",
        "PurgeCertificateBundle",
    ]
    assert d.state.status == "completed" and d.state.reason is None
    assert [s.fingerprint_after for s in d.state.servers] == [NEW_FP, NEW_FP]
    assert [s.fingerprint_before for s in d.state.servers] == [OLD_FP, OLD_FP]
    assert d.state.restored_partners[0].status_code == "SUCCEEDED"
    assert [w.outcome for w in d.state.waits] == ["propagated", "propagated"]
    assert d.state.timers == {}


def test_commands_carry_the_saga_step_attempt_key_and_the_right_payloads():
    d = SagaDriver()
    d.run_to("await_disable_propagation")
    saga = d.state.saga_id
    keys = [m.idempotency_key for m in d.commands(Command)]
    assert keys == [
        f"{saga}:inspect:1",
        f"{saga}:break_replication:1",
        f"{saga}:disable_verification:1",
        f"{saga}:await_disable_propagation:1",
    ]
    brk = d.commands(BreakReplication)[0]
    assert brk.partners == ["site-b"]
    watch = d.awaited
    assert isinstance(watch, AwaitPolicyPropagation)
    assert watch.watch_id == watch.idempotency_key
    assert {(g.group_id, g.target_serial) for g in watch.groups} == {
        ("G0", "G0-disable"),
        ("G1", "G1-disable"),
    }
    assert watch.deadline == d.now + timedelta(days=14)
    assert watch.stale_horizon_days == 30.0 and watch.threshold == 1.0


def test_a_site_without_partners_skips_break_and_restore_of_replication():
    d = SagaDriver()
    d.ok(partners=[])
    while not d.state.terminal:
        d.ok()
    assert "BreakReplication" not in names(d) and "RestoreReplication" not in names(d)
    skipped = [s.name for s in d.state.steps if s.status == "skipped"]
    assert skipped == ["break_replication", "restore_replication"]
    assert d.state.status == "completed"


def finish(d: SagaDriver) -> None:
    while not d.state.terminal and d.state.pending_decision is None:
        d.ok()


# (where it fails, how many successes first, expected status, expected commands after the failure)
FAILURE_ROWS = [
    ("inspect", 0, {}, "failed", ["PurgeCertificateBundle"]),
    ("break_replication, nothing broken", 1, {"backup": False}, "failed", ["PurgeCertificateBundle"]),
    ("break_replication, one partner broken", 1, {}, "compensated",
     ["RestoreReplication", "PurgeCertificateBundle"]),
    ("disable_verification", 2, {}, "compensated",
     ["SetCertificateVerification(restore)", "AwaitPolicyPropagation", "RestoreReplication",
      "PurgeCertificateBundle"]),
    ("update on the first server", 5, {}, "compensated",
     ["RollbackServerCertificate(sepm-a1)", "SetCertificateVerification(restore)",
      "AwaitPolicyPropagation", "RestoreReplication", "PurgeCertificateBundle"]),
    ("update on the second server", 6, {}, "compensated",
     ["RollbackServerCertificate(sepm-a2)", "RollbackServerCertificate(sepm-a1)",
      "SetCertificateVerification(restore)", "AwaitPolicyPropagation", "RestoreReplication",
      "PurgeCertificateBundle"]),
    ("update failing before any backup", 5, {"backup": False}, "compensated",
     ["SetCertificateVerification(restore)", "AwaitPolicyPropagation", "RestoreReplication",
      "PurgeCertificateBundle"]),
    ("propagation watch (step 3)", 3, {}, "paused", []),
    ("verification check before the swap", 4, {}, "paused", []),
    ("enable_verification (after the swap)", 7, {}, "paused", []),
    ("propagation watch (step 6)", 8, {}, "paused", []),
    ("restore_replication (after the swap)", 9, {}, "paused", []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("where", "successes", "kwargs", "status", "then"),
    FAILURE_ROWS,
    ids=[row[0] for row in FAILURE_ROWS],
)
def test_failure_paths(where, successes, kwargs, status, then):
    d = SagaDriver()
    for _ in range(successes):
        d.ok()
    before = len(d.sent)
    d.fail(retryable=False, **kwargs)
    finish(d)
    assert d.state.status == status, d.state.reason
    assert names(d)[before:] == then
    if status == "failed":
        assert d.state.reason is not None and d.state.reason.endswith("nothing was changed")
    if status == "compensated":
        assert "failed" in (d.state.reason or "")


def test_after_the_swap_a_failure_pauses_for_forward_recovery_only():
    d = SagaDriver()
    d.run_to("enable_verification")
    d.fail(retryable=False)
    assert d.state.status == "paused"
    assert d.state.pending_decision is not None
    # No abort: only forward (or an approver going on without it, on the record).
    assert d.state.pending_decision.options == ["extend", "proceed"]
    with pytest.raises(ActionRejectedError):
        d.apply(CancelRequested(by="ops", reason="give up"))
    d.apply(DecisionMade(by="ops", decision="extend", reason="SEPM is back"))
    assert d.awaited.idempotency_key.endswith(":enable_verification:2")
    finish(d)
    assert d.state.status == "completed"


def test_a_rollback_that_fails_pauses_and_can_be_retried():
    d = SagaDriver()
    d.run_to("update_certificate")
    d.fail(retryable=False)
    assert d.state.step == "rollback_certificate"
    d.fail(retryable=False)
    assert d.state.pending_decision is not None
    assert d.state.status == "paused" and d.state.pending_decision.kind == "step_failed"
    d.apply(DecisionMade(by="ops", decision="extend", reason=""))
    assert isinstance(d.awaited, RollbackServerCertificate)
    assert d.awaited.expected_fingerprint == ""  # the failing server never reported its old one
    finish(d)
    assert d.state.status == "compensated"


def test_rollback_expects_the_fingerprint_the_server_served_before():
    d = SagaDriver()
    d.run_to("update_certificate")
    d.ok()  # sepm-a1 updated, reports the old fingerprint
    d.fail(retryable=False)  # sepm-a2 fails after its backup
    rollbacks = []
    while not d.state.terminal:
        if isinstance(d.awaited, RollbackServerCertificate):
            rollbacks.append((d.awaited.server.name, d.awaited.expected_fingerprint))
        d.ok()
    assert rollbacks == [("sepm-a2", OLD_FP), ("sepm-a1", OLD_FP)]
    assert [s.status for s in d.state.servers] == ["rolled_back", "rolled_back"]


def test_a_server_that_does_not_serve_the_new_certificate_on_every_port_is_rolled_back():
    d = SagaDriver()
    d.run_to("update_certificate")
    good = success(d.awaited)
    assert isinstance(good, ServerCertificateUpdated)
    bad = good.model_copy(update={"ports_verified": {**good.ports_verified, "443": OLD_FP}})
    d.answer(bad)
    assert d.state.phase == "compensation"
    assert isinstance(d.awaited, RollbackServerCertificate)
    assert "443" in (d.state.reason or "")
    assert not d.commands(SetCertificateVerification)[1:] or all(
        c.mode == "disable" for c in d.commands(SetCertificateVerification)[:1]
    )


def test_retryable_failures_back_off_then_resend_with_the_next_attempt():
    options = RotationOptions(retry=RetryPolicy(base_seconds=10, max_seconds=60, max_attempts=3))
    d = SagaDriver(options=options)
    d.fail(retryable=True)
    due = d.state.timers["retry"]
    assert timedelta(seconds=5) <= due - d.now <= timedelta(seconds=10)
    assert d.state.awaiting is None
    d.fire("retry")
    assert d.awaited.idempotency_key.endswith(":inspect:2")
    d.fail(retryable=True)
    assert timedelta(seconds=10) <= d.state.timers["retry"] - d.now <= timedelta(seconds=20)
    d.fire("retry")
    d.fail(retryable=True)  # third attempt: none left
    assert d.state.status == "failed"
    assert len(d.commands()) == 4  # three inspections and the purge


def test_stale_and_duplicate_answers_are_ignored():
    options = RotationOptions(retry=RetryPolicy(base_seconds=1, max_seconds=1, max_attempts=3))
    d = SagaDriver(options=options)
    assert d.state.awaiting is not None
    first_id = d.state.awaiting.message_id
    d.fail(retryable=True)
    d.fire("retry")
    state = d.state.model_copy(deep=True)
    decision = d.answer(success(d.awaited), to=first_id)  # answers attempt 1, not attempt 2
    assert decision.ignored and decision.outgoing == []
    assert d.state.step == state.step and d.state.awaiting == state.awaiting
    d.ok()
    assert d.state.step == "break_replication"
    again = d.answer(success(d.commands()[0]), to=first_id)
    assert again.ignored


def test_propagation_progress_is_recorded_and_policy_propagated_opens_the_gates():
    d = SagaDriver()
    d.run_to("await_disable_propagation")
    d.answer(progressed(d.awaited_as(AwaitPolicyPropagation), reached=60, orphan_risk=40))
    wait = d.state.current_wait()
    assert wait is not None
    assert wait.reading is not None
    assert wait.reading.percent == 60 and wait.reading.orphan_risk == 40
    assert d.state.step == "await_disable_propagation"
    d.ok()
    assert d.state.step == "check_verification" and d.state.propagation_gate_passed
    d.ok()
    assert d.state.step == "update_certificate"


def test_the_maximum_wait_pauses_for_a_decision_and_extend_starts_a_new_watch():
    d = SagaDriver()
    d.run_to("await_disable_propagation")
    first = d.awaited_as(AwaitPolicyPropagation)
    d.fire("max_wait")
    assert d.now - d.state.created_at >= timedelta(days=14)
    assert d.state.status == "paused"
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.options == ["extend", "proceed", "abort"]
    d.apply(DecisionMade(by="ops", decision="extend", reason="", extend_days=3))
    cancels = d.commands(CancelPropagationWatch)
    assert [c.watch_id for c in cancels] == [first.watch_id]
    assert d.awaited_as(AwaitPolicyPropagation).deadline == d.now + timedelta(days=3)
    assert d.state.status == "running"
    # An answer of the old watch no longer moves the saga.
    assert d.answer(PolicyPropagated(**counts(first.watch_id)), to="old-watch").ignored
    d.ok()
    assert d.state.step == "check_verification"


def test_extend_at_the_gates_starts_a_watch_of_its_own():
    # The client-monitor answers a watch id it already accepted with that watch's record: a
    # re-watch under the first watch's id would start nothing and the extension would pass
    # without a single reading.
    d = SagaDriver(options=RotationOptions(propagation_threshold=0.9))
    d.run_to("await_disable_propagation")
    first = d.awaited_as(AwaitPolicyPropagation)
    d.answer(PolicyPropagated(**counts(first.watch_id, orphan_risk=2, reached=98)))
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.kind == "orphan_risk"
    d.apply(DecisionMade(by="ops", decision="extend", reason="laptops back Monday", extend_days=2))
    again = d.awaited_as(AwaitPolicyPropagation)
    assert again.watch_id != first.watch_id
    assert again.idempotency_key != first.idempotency_key
    assert again.deadline == d.now + timedelta(days=2)
    assert d.state.status == "running"
    # The new watch's reading is the one the gates go by: all clients reached, the swap runs.
    d.answer(PolicyPropagated(**counts(again.watch_id)))
    d.ok()
    assert isinstance(d.awaited, UpdateServerCertificate)
    # Both watches are on the record, each under its own id.
    assert len({w.watch_id for w in d.state.waits if w.step == "await_disable_propagation"}) == 2


def test_proceed_accepts_the_at_risk_clients_on_the_record_and_goes_to_the_swap():
    d = SagaDriver()
    d.run_to("await_disable_propagation")
    d.answer(stalled(d.awaited_as(AwaitPolicyPropagation), orphan_risk=3))
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.kind == "propagation_wait"
    with pytest.raises(ActionRejectedError):
        d.apply(DecisionMade(by="ops", decision="proceed", reason=" "))
    d.apply(DecisionMade(by="lead", decision="proceed", reason="laptops in storage",
                         change_id="CHG42", accepted_count=3))  # fmt: skip
    assert d.state.risk_acceptance is not None
    assert d.state.risk_acceptance.accepted_count == 3
    assert d.state.risk_acceptance.change_id == "CHG42"
    d.ok()  # verification is still off everywhere
    assert isinstance(d.awaited, UpdateServerCertificate)


def test_abort_while_waiting_compensates_at_once():
    d = SagaDriver()
    d.run_to("await_disable_propagation")
    d.fire("max_wait")
    d.apply(DecisionMade(by="ops", decision="abort", reason="change window missed"))
    assert d.state.phase == "compensation"
    assert d.commands(CancelPropagationWatch)
    finish(d)
    assert d.state.status == "compensated"
    assert d.state.reason == "aborted by ops: change window missed"


def test_orphan_risk_over_budget_blocks_the_swap_and_within_budget_does_not():
    options = RotationOptions(propagation_threshold=0.9)
    d = SagaDriver(options=options)
    d.run_to("await_disable_propagation")
    d.answer(
        PolicyPropagated(
            **counts(d.awaited_as(AwaitPolicyPropagation).watch_id, orphan_risk=2, reached=98)
        )
    )
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.kind == "orphan_risk"
    assert "2 clients" in d.state.pending_decision.reason
    assert not d.commands(UpdateServerCertificate)

    d2 = SagaDriver(options=RotationOptions(propagation_threshold=0.9, orphan_risk_budget=2))
    d2.run_to("await_disable_propagation")
    d2.answer(
        PolicyPropagated(
            **counts(d2.awaited_as(AwaitPolicyPropagation).watch_id, orphan_risk=2, reached=98)
        )
    )
    d2.ok()
    assert isinstance(d2.awaited, UpdateServerCertificate)


def test_approval_gate_waits_for_an_approver():
    d = SagaDriver(options=RotationOptions(require_approval=True))
    d.run_to("gates")
    assert d.state.step == "gates" and d.state.gate_waiting_for == ["approval"]
    assert d.state.awaiting is None and d.state.status == "running"
    d.apply(ApprovalGiven(by="boss", note="ok for tonight"))
    d.ok()
    assert isinstance(d.awaited, UpdateServerCertificate)
    with pytest.raises(ActionRejectedError):
        d.apply(ApprovalGiven(by="boss"))


def test_maintenance_window_holds_the_swap_until_it_opens():
    window = MaintenanceWindow(cron="0 22 * * *", duration_minutes=60, timezone="UTC")
    d = SagaDriver(options=RotationOptions(maintenance_window=window))
    d.run_to("await_disable_propagation")
    d.ok()
    assert d.state.gate_waiting_for == ["maintenance_window"]
    assert d.state.timers["window"].hour == 22
    d.fire("window")
    d.ok()
    assert isinstance(d.awaited, UpdateServerCertificate)
    d.advance(hours=2)  # the window closed while the first server was updated
    d.ok()
    assert d.state.awaiting is None and d.state.gate_waiting_for == ["maintenance_window"]
    d.fire("window")
    assert d.awaited.server.name == "sepm-a2"


def test_verification_off_beyond_the_exposure_limit_raises_an_alert():
    d = SagaDriver(options=RotationOptions(exposure_limit_days=21, max_wait_days=30))
    d.run_to("await_disable_propagation")
    assert d.state.timers["exposure"] == d.now + timedelta(days=21)
    decision = d.fire("exposure")
    alerts = [m for m in decision.commands() if isinstance(m, VerificationExposureExceeded)]
    assert len(alerts) == 1 and alerts[0].limit_days == 21
    assert d.state.exposure_alert is not None
    d2 = SagaDriver()
    while not d2.state.terminal:
        d2.ok()
    assert "exposure" not in d2.state.timers


def test_an_operator_hold_keeps_the_next_command_back_until_resumed():
    d = SagaDriver()
    d.apply(PauseRequested(by="ops", reason="freeze"))
    assert d.state.status == "paused"
    d.ok()
    assert d.state.awaiting is None and d.state.deferred
    assert names(d) == ["InspectSite"]
    d.apply(ResumeRequested(by="ops"))
    assert isinstance(d.awaited, BreakReplication)
    with pytest.raises(ActionRejectedError):
        d.apply(ResumeRequested(by="ops"))


def test_cancel_with_a_command_in_flight_compensates_when_it_answers():
    d = SagaDriver()
    d.run_to("disable_verification")
    d.apply(CancelRequested(by="ops", reason="wrong site"))
    assert d.state.abort_requested and d.state.step == "disable_verification"
    d.ok()
    assert d.state.phase == "compensation"
    finish(d)
    assert names(d)[-4:] == [
        "SetCertificateVerification(restore)",
        "AwaitPolicyPropagation",
        "RestoreReplication",
        "PurgeCertificateBundle",
    ]
    assert d.state.status == "compensated"


def test_cancel_during_the_swap_rolls_back_the_servers_already_updated():
    d = SagaDriver()
    d.run_to("update_certificate")
    d.apply(CancelRequested(by="ops", reason="users complain"))
    d.ok()  # sepm-a1 finished its update
    assert isinstance(d.awaited, RollbackServerCertificate)
    assert d.awaited.server.name == "sepm-a1"
    finish(d)
    assert d.state.status == "compensated"
    assert not any(
        isinstance(m, UpdateServerCertificate) and m.server.name == "sepm-a2" for m in d.commands()
    )


def test_cancel_after_every_server_was_swapped_is_refused():
    d = SagaDriver()
    d.run_to("enable_verification")
    with pytest.raises(ActionRejectedError, match="forward recovery"):
        d.apply(CancelRequested(by="ops", reason="late"))


def test_the_bundle_is_purged_exactly_once_whatever_the_outcome():
    d = SagaDriver()
    d.fail(retryable=False)
    assert len(d.commands(PurgeCertificateBundle)) == 1
    with pytest.raises(ActionRejectedError):
        d.apply(PauseRequested(by="ops"))
    assert d.answer(success(d.commands()[0])).ignored


def test_restore_replication_re_adds_only_what_was_broken():
    d = SagaDriver()
    d.ok(partners=["site-b", "site-c"])
    d.answer(success(d.awaited).model_copy(update={"broken_partners": ["site-b"]}))
    finish(d)
    assert d.commands(RestoreReplication)[0].partners == ["site-b"]


def test_a_rotation_paused_before_the_gates_resumes_at_the_gates():
    # An operator paused it, so step 3's watch was kept back; its maximum wait ran out and an
    # approver proceeded: it reached the gates (the window closed) while still paused.
    window = MaintenanceWindow(cron="0 22 * * *", duration_minutes=60, timezone="UTC")
    d = SagaDriver(options=RotationOptions(maintenance_window=window))
    d.run_to("disable_verification")
    d.apply(PauseRequested(by="ops", reason="freeze"))
    d.ok()
    assert d.state.step == "await_disable_propagation" and d.state.deferred
    d.fire("max_wait")
    d.apply(DecisionMade(by="ops", decision="proceed", reason="accepted", accepted_count=0))
    assert d.state.step == "gates" and d.state.status == "paused"
    d.apply(ResumeRequested(by="ops"))
    assert d.state.status == "running"
    assert d.state.gate_waiting_for == ["maintenance_window"]
    d.fire("window")
    assert d.state.step == "check_verification"
    assert (
        d.state.awaiting is not None and d.state.awaiting.command == "CheckCertificateVerification"
    )
