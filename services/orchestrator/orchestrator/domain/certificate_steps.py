"""The swap's rows: update the certificate server by server (step 4) and, to compensate, put
the backed-up one back; and what each answer records."""

from __future__ import annotations

from datetime import datetime

from certrotate_shared.envelope import Command, Event
from certrotate_shared.messages.certificates import (
    RollbackServerCertificate,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
    UpdateServerCertificate,
)
from orchestrator.domain.state import SagaState
from orchestrator.domain.step_kinds import Refuted, Verdict


def every_server(s: SagaState) -> list[str]:
    return [p.name for p in s.servers]


def update(s: SagaState, key: str, now: datetime) -> Command:
    server = s.servers[s.server_index].name
    return UpdateServerCertificate(
        idempotency_key=key,
        site=s.target,
        server=s.target.server(server),
        bundle_ref=s.certificate.bundle_ref,
        expected_fingerprint=s.certificate.fingerprint_sha256,
    )


def updating(s: SagaState, server: str) -> None:
    s.server(server).status = "updating"
    s.swap_started = True


def swapped(s: SagaState) -> None:
    s.swap_done = True


def updated(s: SagaState, event: ServerCertificateUpdated, now: datetime) -> Verdict:
    progress = s.server(event.server)
    expected = s.certificate.fingerprint_sha256.lower()
    progress.fingerprint_after = event.fingerprint
    progress.ports_verified = dict(event.ports_verified)
    progress.backup_ref = event.backup_ref
    if event.previous_fingerprint:
        progress.fingerprint_before = event.previous_fingerprint
    required = set(s.target.server(event.server).tls_ports())
    seen = {port: fp.lower() for port, fp in event.ports_verified.items()}
    wrong = sorted(p for p, fp in seen.items() if fp != expected)
    missing = sorted(required - set(seen))
    if event.fingerprint.lower() != expected or wrong or missing or not seen:
        progress.status = "failed"
        progress.error = (
            f"{event.server} does not serve the new certificate on every port"
            f" (wrong: {wrong or 'none'}, not checked: {missing or 'none'})"
        )
        return Refuted(progress.error)
    progress.status = "updated"
    return None


def update_failed(s: SagaState, event: ServerCertificateUpdateFailed, now: datetime) -> str:
    progress = s.server(event.server)
    progress.status = "failed"
    progress.error = f"{event.stage}: {event.reason}"
    progress.backup_ref = event.backup_ref or progress.backup_ref
    if event.previous_fingerprint:
        progress.fingerprint_before = event.previous_fingerprint
    return f"{event.server} ({event.stage}): {event.reason}"


def update_answered_late(s: SagaState, event: Event) -> str | None:
    if not isinstance(event, ServerCertificateUpdated | ServerCertificateUpdateFailed):
        return None
    progress = s.server(event.server)
    if event.backup_ref:
        progress.backup_ref = event.backup_ref
    if event.previous_fingerprint and not progress.fingerprint_before:
        progress.fingerprint_before = event.previous_fingerprint
    if isinstance(event, ServerCertificateUpdated) and progress.status != "rolled_back":
        progress.fingerprint_after = event.fingerprint
        return f"{event.server} was updated after all: it is rolled back"
    if event.backup_ref:
        return f"{event.server} was touched (backup {event.backup_ref}): it is rolled back"
    return None


def to_roll_back(s: SagaState) -> list[str]:
    return s.rollback_queue


def roll_back(s: SagaState, key: str, now: datetime) -> Command:
    progress = s.server(s.rollback_queue[s.server_index])
    return RollbackServerCertificate(
        idempotency_key=key,
        site=s.target,
        server=s.target.server(progress.name),
        backup_ref=progress.backup_ref or "",
        expected_fingerprint=previous_fingerprint(s, progress.name),
    )


def rolling_back(s: SagaState, server: str) -> None:
    s.server(server).status = "rolling_back"


def rolled_back(s: SagaState, event: ServerCertificateRolledBack, now: datetime) -> Verdict:
    progress = s.server(event.server)
    expected = previous_fingerprint(s, event.server)
    progress.fingerprint_after = event.fingerprint
    if expected and event.fingerprint.lower() != expected.lower():
        progress.status = "rollback_failed"
        return Refuted(f"{event.server} serves {event.fingerprint} after rollback, not {expected}")
    progress.status = "rolled_back"
    return None


def rollback_failed(s: SagaState, event: ServerCertificateRollbackFailed, now: datetime) -> str:
    progress = s.server(event.server)
    progress.status = "rollback_failed"
    progress.error = event.reason
    return f"{event.server}: {event.reason}"


def previous_fingerprint(s: SagaState, server: str) -> str:
    """The fingerprint a rollback must bring back: the server's own, else its site's old one."""
    own = s.server(server).fingerprint_before
    if own:
        return own
    others = [p.fingerprint_before for p in s.servers if p.fingerprint_before]
    return others[0] if others else ""
