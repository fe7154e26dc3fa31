"""No rotation waits forever: deadlines, re-sends with the same key, cancel while a command is in
flight, late answers to abandoned commands, and messages parked in the DLQ."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certrotate_shared.envelope import Command
from certrotate_shared.messages.certificates import (
    RollbackServerCertificate,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.replication import RestoreReplication
from orchestrator.domain.inputs import (
    ActionRejectedError,
    CancelRequested,
    DecisionMade,
    ReplayRequested,
)
from orchestrator.domain.state import AnswerDeadlines, RotationOptions
from tests.unit.orchestrator.saga_driver import SagaDriver, parked, success
from tests.unit.orchestrator.test_saga_transitions import finish, names

pytestmark = pytest.mark.unit

LIMITS = AnswerDeadlines(
    sepm_call_seconds=300, host_operation_seconds=1800, restore_replication_seconds=4200, resends=2
)


def driver(**kwargs) -> SagaDriver:
    return SagaDriver(options=RotationOptions(answer_deadlines=LIMITS), **kwargs)


def test_a_worker_that_never_answers_gets_the_same_command_again_then_a_decision():
    d = driver()
    d.run_to("disable_verification")
    first = d.awaited
    assert d.state.timers["deadline"] == d.now + timedelta(seconds=300)
    d.fire("deadline")
    d.fire("deadline")
    resent = d.commands(SetCertificateVerification)
    assert len(resent) == 3
    assert {c.idempotency_key for c in resent} == {first.idempotency_key}
    assert d.state.status == "running"
    d.fire("deadline")
    assert d.state.status == "paused"
    pending = d.state.pending_decision
    assert pending.kind == "no_answer" and pending.step == "disable_verification"
    assert pending.options == ["retry", "compensate"]
    assert "SetCertificateVerification" in pending.reason
    assert "deadline" not in d.state.timers
    assert len(d.commands(SetCertificateVerification)) == 3  # nothing more sent while paused


def test_cancel_after_a_no_answer_pause_compensates_to_compensated():
    d = driver()
    d.run_to("disable_verification")
    for _ in range(3):
        d.fire("deadline")
    d.apply(CancelRequested(by="ops", reason="worker is down"))
    assert d.state.phase == "compensation"
    # The disable may have run: verification is restored from the worker's own record.
    assert d.state.verification_touched and d.state.abandoned[0].step == "disable_verification"
    restore = d.awaited
    assert isinstance(restore, SetCertificateVerification) and restore.mode == "restore"
    finish(d)
    assert d.state.status == "compensated"
    assert names(d)[-3:] == [
        "AwaitPolicyPropagation",
        "RestoreReplication",
        "PurgeCertificateBundle",
    ]


def test_cancel_while_a_command_is_in_flight_takes_effect_at_its_deadline():
    d = driver()
    d.run_to("break_replication")
    d.apply(CancelRequested(by="ops", reason="wrong site"))
    assert d.state.abort_requested and d.state.phase == "forward"
    d.fire("deadline")  # no answer: stop waiting, no re-send
    assert d.state.phase == "compensation"
    # The break may have removed the partnership: it is re-added.
    assert isinstance(d.awaited, RestoreReplication) and d.awaited.partners == ["site-b"]
    finish(d)
    assert d.state.status == "compensated"


def test_a_late_update_after_cancel_means_that_server_is_rolled_back():
    d = driver()
    d.run_to("update_certificate")
    update = d.awaited
    assert d.state.awaiting is not None
    update_id = d.state.awaiting.message_id
    d.apply(CancelRequested(by="ops", reason="users complain"))
    d.fire("deadline")
    assert d.state.phase == "compensation"
    rollback = d.awaited
    assert isinstance(rollback, RollbackServerCertificate) and rollback.server.name == "sepm-a1"
    # The update finishes after all: its answer is recorded and the rollback knows the backup.
    late = d.answer(success(update), to=update_id)
    assert not late.ignored
    assert any("updated after all" in n for n in late.notes)
    assert d.state.server("sepm-a1").backup_ref == "backup-sepm-a1"
    assert d.state.step == "rollback_certificate"  # the late answer did not move the saga
    d.fail(retryable=False)  # the first rollback went out before the backup was known
    d.apply(DecisionMade(by="ops", decision="extend", reason="backup known now"))
    assert d.awaited_as(RollbackServerCertificate).backup_ref == "backup-sepm-a1"
    finish(d)
    assert d.state.status == "compensated"
    assert d.state.server("sepm-a1").status == "rolled_back"
    assert not any(
        isinstance(m, UpdateServerCertificate) and m.server.name == "sepm-a2" for m in d.commands()
    )


def test_a_late_answer_to_a_resent_command_still_counts():
    d = driver()
    assert d.state.awaiting is not None
    first_id = d.state.awaiting.message_id
    d.fire("deadline")
    assert d.state.awaiting is not None
    assert d.state.awaiting.message_id != first_id
    d.answer(success(d.commands()[0]), to=first_id)  # the first send's answer, late
    assert d.state.step == "break_replication"


def test_an_answer_after_the_no_answer_pause_moves_the_saga_on():
    d = driver()
    for _ in range(3):
        d.fire("deadline")
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.kind == "no_answer"
    d.ok()
    assert d.state.pending_decision is None and d.state.step == "break_replication"
    assert d.state.status == "running"


def test_retry_resends_with_the_same_key_and_a_fresh_budget():
    d = driver()
    for _ in range(3):
        d.fire("deadline")
    d.apply(DecisionMade(by="ops", decision="retry", reason="worker restarted"))
    assert d.state.awaiting is not None
    assert d.state.status == "running" and d.state.awaiting.resends == 1
    assert {c.idempotency_key for c in d.commands(Command)} == {f"{d.state.saga_id}:inspect:1"}
    d.ok()
    assert d.state.step == "break_replication"


def test_mark_done_is_offered_only_where_nothing_later_relies_on_the_answer():
    d = driver()
    d.run_to("restore_replication")
    for _ in range(3):
        d.fire("deadline")
    assert d.state.pending_decision is not None
    assert d.state.pending_decision.options == ["retry", "mark_done"]  # after the swap
    with pytest.raises(ActionRejectedError, match="reason"):
        d.apply(DecisionMade(by="ops", decision="mark_done", reason=""))
    d.apply(DecisionMade(by="ops", decision="mark_done", reason="re-added in the console"))
    assert d.state.status == "completed"
    step = [s for s in d.state.steps if s.name == "restore_replication"][-1]
    assert step.detail == "marked done by ops: re-added in the console"

    early = driver()
    early.run_to("update_certificate")
    for _ in range(3):
        early.fire("deadline")
    assert early.state.pending_decision is not None
    assert early.state.pending_decision.options == ["retry", "compensate"]
    with pytest.raises(ActionRejectedError):
        early.apply(DecisionMade(by="ops", decision="mark_done", reason="I did it by hand"))


def test_a_manual_host_operation_gets_the_manual_deadline():
    d = SagaDriver(options=RotationOptions(answer_deadlines=LIMITS))
    manual = d.state.target.host_ops.model_copy(update={"driver": "manual"})
    d.state.target = d.state.target.model_copy(update={"host_ops": manual})
    d.run_to("update_certificate")
    assert d.state.timers["deadline"] == d.now + timedelta(seconds=86400)


def test_propagation_waits_keep_their_maximum_wait_and_no_answer_deadline():
    d = driver()
    d.run_to("await_disable_propagation")
    assert "deadline" not in d.state.timers and "max_wait" in d.state.timers


def test_a_parked_command_pauses_the_rotation_with_the_reason():
    d = driver()
    d.run_to("disable_verification")
    d.park()
    pending = d.state.pending_decision
    assert pending is not None
    assert d.state.status == "paused" and pending.kind == "dead_letter"
    assert pending.reason.startswith("certificates parked SetCertificateVerification after 5")
    assert "KeyError" in pending.reason
    assert pending.options == ["retry", "compensate"]
    assert "deadline" not in d.state.timers


def test_a_parked_message_the_rotation_does_not_wait_for_only_goes_in_the_history():
    d = driver()
    first = d.awaited
    d.ok()
    noted = d.answer(parked(first, "an-old-message-id"))
    assert d.state.pending_decision is None and d.state.status == "running"
    assert any("not what the rotation waits for" in n for n in noted.notes)


def test_replay_of_the_parked_command_resumes_waiting_for_its_answer():
    d = driver()
    d.run_to("disable_verification")
    assert d.state.awaiting is not None
    message_id = d.state.awaiting.message_id
    assert message_id is not None
    d.park()
    d.apply(
        ReplayRequested(
            by="ops", dead_letter_id="7", message_id=message_id,
            message_type="SetCertificateVerification",
        )
    )  # fmt: skip
    assert d.state.pending_decision is None and d.state.status == "running"
    assert "deadline" in d.state.timers
    d.ok()
    assert d.state.step == "await_disable_propagation"
    with pytest.raises(ActionRejectedError, match="does not wait"):
        d.apply(ReplayRequested(by="ops", dead_letter_id="7", message_id=message_id,
                                message_type="SetCertificateVerification"))  # fmt: skip


def test_cancel_while_a_parked_command_is_pending_compensates_at_once():
    d = driver()
    d.run_to("update_certificate")
    d.park()
    d.apply(CancelRequested(by="ops", reason="give up"))
    assert d.state.phase == "compensation"
    assert isinstance(d.awaited, RollbackServerCertificate)
