"""The rotation saga as one table: the vendor's seven steps, then the compensation steps.

Each row says what it sends, which answers it waits for and the handler that records each, what
an abandoned command of it is assumed to have done, what happens when its retries run out, and
the rows that compensate it. `saga.py` interprets the table without asking which step it is at.
"""

from __future__ import annotations

from datetime import datetime

from certrotate_shared.envelope import Event
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
)
from certrotate_shared.messages.replication import (
    ReplicationBreakFailed,
    ReplicationBroken,
    ReplicationRestored,
    ReplicationRestoreFailed,
    SiteInspected,
    SiteInspectionFailed,
)
from orchestrator.domain import certificate_steps as certificate
from orchestrator.domain import replication_steps as replication
from orchestrator.domain import verification_steps as verification
from orchestrator.domain.propagation_steps import watch
from orchestrator.domain.state import PropagationWait, SagaState
from orchestrator.domain.step_kinds import (
    AnswerKind,
    Exhausted,
    Gate,
    Invoke,
    PerServer,
    Reply,
    Step,
    Watch,
)

__all__ = ["AnswerKind", "Exhausted", "Gate", "Invoke", "PerServer", "Step", "Watch"]


def _reason(s: SagaState, event: Event, now: datetime) -> str:
    return str(getattr(event, "reason", event.type_name()))


def _restore_replication(number: int, title: str) -> Invoke:
    return Invoke(
        name="restore_replication", number=number, title=title, send=replication.restore,
        on_success=Reply(ReplicationRestored, replication.restored),
        on_failure=Reply(ReplicationRestoreFailed, replication.restore_failed),
        exhausted="pause", skip=lambda s: not s.broken_partners, answer="restore_replication",
        may_mark_done=True,
    )  # fmt: skip


# --- the compensation rows, each named by the forward row it undoes -------------------------

ROLLBACK_CERTIFICATE = PerServer(
    name="rollback_certificate", number=4,
    title="Put the backed-up certificate back and verify it is served",
    send=certificate.roll_back, servers=certificate.to_roll_back, starting=certificate.rolling_back,
    on_success=Reply(ServerCertificateRolledBack, certificate.rolled_back),
    on_failure=Reply(ServerCertificateRollbackFailed, certificate.rollback_failed),
    exhausted="pause", skip=lambda s: not s.rollback_queue, answer="host_operation",
)  # fmt: skip
RESTORE_VERIFICATION = Invoke(
    name="restore_verification", number=2,
    title="Put back each group's original verification setting",
    send=verification.restore,
    on_success=Reply(CertificateVerificationSet, verification.restored),
    on_failure=Reply(CertificateVerificationFailed, verification.failed),
    exhausted="pause", skip=lambda s: not s.verification_touched, answer="sepm_call",
    may_proceed=True,
)  # fmt: skip
AWAIT_RESTORE_PROPAGATION = watch(
    "await_restore_propagation", 3, "Wait until the clients have the restored policy",
    groups=lambda s: s.restored_groups, skip=lambda s: not s.restored_groups,
)  # fmt: skip
UNBREAK_REPLICATION = _restore_replication(1, "Restore the partnerships broken in step 1")

# --- the vendor's seven steps -----------------------------------------------------------------

FORWARD: tuple[Step, ...] = (
    Invoke(
        name="inspect", number=0, title="Pre-flight: inspect the site and its replication partners",
        send=replication.inspect,
        on_success=Reply(SiteInspected, replication.inspected),
        on_failure=Reply(SiteInspectionFailed, _reason),
        exhausted="fail", answer="sepm_call",
    ),
    Invoke(
        name="break_replication", number=1, title="Break replication with the partners",
        send=replication.break_partners,
        on_success=Reply(ReplicationBroken, replication.broken),
        on_failure=Reply(ReplicationBreakFailed, replication.break_failed),
        exhausted="compensate", skip=lambda s: not s.partners, answer="host_operation",
        abandoned=replication.break_abandoned, late=replication.break_answered_late,
        compensation=(UNBREAK_REPLICATION,),
    ),
    Invoke(
        name="disable_verification", number=2,
        title="Disable certificate verification in every group and location",
        send=verification.disable,
        on_success=Reply(CertificateVerificationSet, verification.disabled),
        on_failure=Reply(CertificateVerificationFailed, verification.failed),
        exhausted="compensate", answer="sepm_call",
        abandoned=verification.disable_abandoned, late=verification.disable_answered_late,
        compensation=(RESTORE_VERIFICATION, AWAIT_RESTORE_PROPAGATION),
    ),
    watch(
        "await_disable_propagation", 3, "Wait until the clients have the verification-off policy",
        groups=lambda s: s.disabled_groups, opens_gate=True,
    ),
    Gate(
        name="gates", number=None,
        title="Gates: propagation, orphan risk, approval, maintenance window",
        watches="await_disable_propagation",
    ),
    Invoke(
        name="check_verification", number=None,
        title="Re-check that verification is off everywhere before the swap",
        send=verification.check,
        on_success=Reply(CertificateVerificationChecked, verification.checked),
        on_failure=Reply(CertificateVerificationCheckFailed, _reason),
        exhausted="pause", answer="sepm_call", redo_from="disable_verification",
    ),
    PerServer(
        name="update_certificate", number=4,
        title="Update the certificate, one management server at a time",
        send=certificate.update, servers=certificate.every_server, in_window=True,
        starting=certificate.updating, finished=certificate.swapped,
        on_success=Reply(ServerCertificateUpdated, certificate.updated),
        on_failure=Reply(ServerCertificateUpdateFailed, certificate.update_failed),
        exhausted="compensate", answer="host_operation",
        late=certificate.update_answered_late, compensation=(ROLLBACK_CERTIFICATE,),
    ),
    Invoke(
        name="enable_verification", number=5, title="Enable certificate verification again",
        send=verification.restore,
        on_success=Reply(CertificateVerificationSet, verification.restored),
        on_failure=Reply(CertificateVerificationFailed, verification.failed),
        exhausted="pause", answer="sepm_call", may_proceed=True,
    ),
    watch(
        "await_enable_propagation", 6, "Wait until the clients have the verification-on policy",
        groups=lambda s: s.restored_groups, skip=lambda s: not s.restored_groups,
        stalled="after_swap_wait",
    ),
    _restore_replication(7, "Restore exactly the partnerships broken in step 1"),
)  # fmt: skip

# Undo newest first: each forward row's compensation, from the last row back to the first.
# Every compensation row skips itself when there is nothing of its kind to undo.
COMPENSATION: tuple[Step, ...] = tuple(
    row for step in reversed(FORWARD) if isinstance(step, Invoke) for row in step.compensation
)

TABLES: dict[str, tuple[Step, ...]] = {"forward": FORWARD, "compensation": COMPENSATION}

GATE = next(step for step in FORWARD if isinstance(step, Gate))


def step_named(phase: str, name: str) -> Step:
    for step in TABLES[phase]:
        if step.name == name:
            return step
    raise KeyError(f"no step {name!r} in the {phase} table")


def step_index(phase: str, name: str) -> int:
    return [s.name for s in TABLES[phase]].index(name)


def risk_wait(s: SagaState) -> PropagationWait | None:
    """The wait whose at-risk reading the gates and the swap go by (step 3's)."""
    return s.current_wait(GATE.watches)
