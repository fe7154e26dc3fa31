"""The rotation saga as one table: the vendor's seven steps, then the compensation steps.

Each row names the command it sends, the events that answer it, what a success records, and
what happens when its retries run out. `saga.py` interprets the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from certrotate_shared.envelope import Command, Event
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    CheckCertificateVerification,
    RollbackServerCertificate,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    PolicyPropagated,
    PropagationWatchFailed,
)
from certrotate_shared.messages.replication import (
    BreakReplication,
    InspectSite,
    ReplicationBreakFailed,
    ReplicationBroken,
    ReplicationRestored,
    ReplicationRestoreFailed,
    RestoreReplication,
    SiteInspected,
    SiteInspectionFailed,
)
from orchestrator.domain.state import SagaState

# What to do when a step's retries run out (or its failure is not retryable):
#   fail        end as failed: nothing was changed
#   compensate  undo what was done, in reverse
#   rollback    put back the certificate on every server touched, then compensate
#   pause       wait for an operator decision (forward recovery only, or a wait that stalled)
Exhausted = Literal["fail", "compensate", "rollback", "pause"]
# Which answer deadline applies to a step's command (RotationOptions.answer_deadlines).
AnswerKind = Literal["sepm_call", "host_operation", "restore_replication"]
Phase = Literal["forward", "compensation"]


@dataclass(frozen=True)
class Send:
    """How a step builds its command: (state, idempotency key, now) -> command."""

    build: Callable[[SagaState, str, datetime], Command]


@dataclass(frozen=True)
class Step:
    name: str
    number: int | None  # the vendor procedure's step number (docs/design.md), None for the gates
    title: str
    send: Send | None
    succeeded: type[Event] | None
    failed: type[Event] | None
    exhausted: Exhausted
    skip: Callable[[SagaState], bool] | None = None
    per_server: bool = False
    waits_for_propagation: bool = False
    # None: no answer deadline (a propagation wait has its own maximum wait instead).
    answer: AnswerKind | None = None
    # An operator may mark the step done (with a reason) when its answer never comes: only
    # where nothing later relies on what the answer would have told the saga.
    may_mark_done: bool = False
    # When its retries run out, an approver may go on without what it could not do (a group
    # deleted during the rotation can never be restored), a named risk on the record.
    may_proceed: bool = False


def _inspect(s: SagaState, key: str, now: datetime) -> Command:
    return InspectSite(idempotency_key=key, site=s.target)


def _break(s: SagaState, key: str, now: datetime) -> Command:
    return BreakReplication(idempotency_key=key, site=s.target, partners=partner_names(s))


def _disable(s: SagaState, key: str, now: datetime) -> Command:
    return SetCertificateVerification(idempotency_key=key, site=s.target, mode="disable")


def _restore_verification(s: SagaState, key: str, now: datetime) -> Command:
    # The originals step 2 recorded travel with the command: the worker puts back exactly these
    # (None when the saga recorded none, e.g. a disable that failed half-way: the worker's own
    # record is all there is).
    originals = list(s.disabled_groups) or None
    return SetCertificateVerification(
        idempotency_key=key, site=s.target, mode="restore", originals=originals
    )


def _check_verification(s: SagaState, key: str, now: datetime) -> Command:
    return CheckCertificateVerification(idempotency_key=key, site=s.target)


def _await(s: SagaState, key: str, now: datetime) -> Command:
    groups = s.disabled_groups if s.step == "await_disable_propagation" else s.restored_groups
    wait = s.current_wait(s.step)
    deadline = wait.deadline if wait else now + timedelta(days=s.options.max_wait_days)
    return AwaitPolicyPropagation(
        idempotency_key=key,
        site=s.target,
        watch_id=key,
        groups=[g.as_target() for g in groups],
        stale_horizon_days=s.options.stale_horizon_days,
        threshold=s.options.propagation_threshold,
        deadline=deadline,
    )


def _update(s: SagaState, key: str, now: datetime) -> Command:
    server = s.servers[s.server_index].name
    return UpdateServerCertificate(
        idempotency_key=key,
        site=s.target,
        server=s.target.server(server),
        bundle_ref=s.certificate.bundle_ref,
        expected_fingerprint=s.certificate.fingerprint_sha256,
    )


def _rollback(s: SagaState, key: str, now: datetime) -> Command:
    progress = s.server(s.rollback_queue[s.server_index])
    return RollbackServerCertificate(
        idempotency_key=key,
        site=s.target,
        server=s.target.server(progress.name),
        backup_ref=progress.backup_ref or "",
        expected_fingerprint=previous_fingerprint(s, progress.name),
    )


def _restore_replication(s: SagaState, key: str, now: datetime) -> Command:
    return RestoreReplication(idempotency_key=key, site=s.target, partners=list(s.broken_partners))


def partner_names(s: SagaState) -> list[str]:
    return [p.name for p in s.partners]


def previous_fingerprint(s: SagaState, server: str) -> str:
    """The fingerprint a rollback must bring back: the server's own, else its site's old one."""
    own = s.server(server).fingerprint_before
    if own:
        return own
    others = [p.fingerprint_before for p in s.servers if p.fingerprint_before]
    return others[0] if others else ""


FORWARD: tuple[Step, ...] = (
    Step("inspect", 0, "Pre-flight: inspect the site and its replication partners",
         Send(_inspect), SiteInspected, SiteInspectionFailed, exhausted="fail", answer="sepm_call"),
    Step("break_replication", 1, "Break replication with the partners",
         Send(_break), ReplicationBroken, ReplicationBreakFailed, exhausted="compensate",
         skip=lambda s: not s.partners, answer="host_operation"),
    Step("disable_verification", 2, "Disable certificate verification in every group and location",
         Send(_disable), CertificateVerificationSet, CertificateVerificationFailed,
         exhausted="compensate", answer="sepm_call"),
    Step("await_disable_propagation", 3, "Wait until the clients have the verification-off policy",
         Send(_await), PolicyPropagated, PropagationWatchFailed, exhausted="pause",
         waits_for_propagation=True),
    Step("gates", None, "Gates: propagation, orphan risk, approval, maintenance window",
         None, None, None, exhausted="pause"),
    Step("check_verification", None, "Re-check that verification is off everywhere before the swap",
         Send(_check_verification), CertificateVerificationChecked,
         CertificateVerificationCheckFailed, exhausted="pause", answer="sepm_call"),
    Step("update_certificate", 4, "Update the certificate, one management server at a time",
         Send(_update), ServerCertificateUpdated, ServerCertificateUpdateFailed,
         exhausted="rollback", per_server=True, answer="host_operation"),
    Step("enable_verification", 5, "Enable certificate verification again",
         Send(_restore_verification), CertificateVerificationSet, CertificateVerificationFailed,
         exhausted="pause", answer="sepm_call", may_proceed=True),
    Step("await_enable_propagation", 6, "Wait until the clients have the verification-on policy",
         Send(_await), PolicyPropagated, PropagationWatchFailed, exhausted="pause",
         skip=lambda s: not s.restored_groups, waits_for_propagation=True),
    Step("restore_replication", 7, "Restore exactly the partnerships broken in step 1",
         Send(_restore_replication), ReplicationRestored, ReplicationRestoreFailed,
         exhausted="pause", skip=lambda s: not s.broken_partners, answer="restore_replication",
         may_mark_done=True),
)  # fmt: skip

COMPENSATION: tuple[Step, ...] = (
    Step("rollback_certificate", 4, "Put the backed-up certificate back and verify it is served",
         Send(_rollback), ServerCertificateRolledBack, ServerCertificateRollbackFailed,
         exhausted="pause", skip=lambda s: not s.rollback_queue, per_server=True,
         answer="host_operation"),
    Step("restore_verification", 2, "Put back each group's original verification setting",
         Send(_restore_verification), CertificateVerificationSet, CertificateVerificationFailed,
         exhausted="pause", skip=lambda s: not s.verification_touched, answer="sepm_call",
         may_proceed=True),
    Step("await_restore_propagation", 3, "Wait until the clients have the restored policy",
         Send(_await), PolicyPropagated, PropagationWatchFailed, exhausted="pause",
         skip=lambda s: not s.restored_groups, waits_for_propagation=True),
    Step("restore_replication", 1, "Restore the partnerships broken in step 1",
         Send(_restore_replication), ReplicationRestored, ReplicationRestoreFailed,
         exhausted="pause", skip=lambda s: not s.broken_partners, answer="restore_replication",
         may_mark_done=True),
)  # fmt: skip

TABLES: dict[str, tuple[Step, ...]] = {"forward": FORWARD, "compensation": COMPENSATION}


def step_named(phase: str, name: str) -> Step:
    for step in TABLES[phase]:
        if step.name == name:
            return step
    raise KeyError(f"no step {name!r} in the {phase} table")


def step_index(phase: str, name: str) -> int:
    return [s.name for s in TABLES[phase]].index(name)
