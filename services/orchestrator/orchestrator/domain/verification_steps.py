"""The verification rows: disable it (step 2), check it is still off before the swap, and put
back the original values (step 5 and its compensation), and what each answer records."""

from __future__ import annotations

from datetime import datetime, timedelta

from certrotate_shared.envelope import Command, Event
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    CheckCertificateVerification,
    SetCertificateVerification,
)
from orchestrator.domain import verification
from orchestrator.domain.state import ReenabledFinding, SagaState
from orchestrator.domain.step_kinds import Refuted, Regressed, Verdict


def disable(s: SagaState, key: str, now: datetime) -> Command:
    return SetCertificateVerification(idempotency_key=key, site=s.target, mode="disable")


def disabled(s: SagaState, event: CertificateVerificationSet, now: datetime) -> Verdict:
    if event.mode != "disable":
        return Refuted(f"the verification was set to {event.mode!r}, not 'disable'", True)
    s.verification_touched = True
    problem = verification.disable_problem(event.groups)
    if problem is not None:
        return Refuted(problem, True)
    # A second disable (verification found back on) must not overwrite the originals.
    s.disabled_groups = verification.merge_disabled(s.disabled_groups, event.groups)
    s.verification_off_since = s.verification_off_since or now
    limit = timedelta(days=s.options.exposure_limit_days)
    s.timers["exposure"] = s.verification_off_since + limit
    return None


def failed(s: SagaState, event: CertificateVerificationFailed, now: datetime) -> str:
    if event.mode == "disable":
        # A failed disable may have changed some groups: restoring is always safe.
        s.verification_touched = True
    return event.reason


def disable_abandoned(s: SagaState) -> None:
    s.verification_touched = True


def disable_answered_late(s: SagaState, event: Event) -> str | None:
    if not isinstance(event, CertificateVerificationSet) or event.mode != "disable":
        return None
    s.verification_touched = True
    s.disabled_groups = verification.merge_disabled(s.disabled_groups, event.groups)
    return f"verification was turned off in {len(event.groups)} groups: their originals are kept"


def check(s: SagaState, key: str, now: datetime) -> Command:
    return CheckCertificateVerification(idempotency_key=key, site=s.target)


def checked(s: SagaState, event: CertificateVerificationChecked, now: datetime) -> Verdict:
    """Verification is on again somewhere (another administrator): no swap."""
    if not event.enabled:
        return None
    finding = ReenabledFinding(
        at=now,
        locations=verification.describe_enabled(event.enabled),
        locations_checked=event.locations_checked,
    )
    s.reenabled_findings.append(finding)
    where = ", ".join(finding.locations)
    times = len(s.reenabled_findings)
    return Regressed(
        note=f"verification is on again in {len(finding.locations)} locations: {where}",
        redo=f"verification on again in: {where}",
        pause=(
            f"verification was turned back on {times} times before the swap; now in: {where}"
            if times > s.options.max_reenable_loops
            else None
        ),
    )


def restore(s: SagaState, key: str, now: datetime) -> Command:
    # The originals step 2 recorded travel with the command: the worker puts back exactly these
    # (None when the saga recorded none, e.g. a disable that failed half-way: the worker's own
    # record is all there is).
    originals = list(s.disabled_groups) or None
    return SetCertificateVerification(
        idempotency_key=key, site=s.target, mode="restore", originals=originals
    )


def restored(s: SagaState, event: CertificateVerificationSet, now: datetime) -> Verdict:
    if event.mode != "restore":
        return Refuted(f"the verification was set to {event.mode!r}, not 'restore'", True)
    # What was restored is watched by the next step, even if an approver has to go on without
    # the rest.
    s.restored_groups = list(event.groups)
    problem = verification.restore_problem(s.disabled_groups, event.groups)
    if problem is not None:
        return Refuted(problem, True)
    s.verification_restored_at = now
    s.timers.pop("exposure", None)
    return None
