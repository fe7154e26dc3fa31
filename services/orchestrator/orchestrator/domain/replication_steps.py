"""Replication's rows: inspect the site (step 0), break (step 1) and restore (step 7)
replication, and what each answer records."""

from __future__ import annotations

from datetime import datetime

from certrotate_shared.envelope import Command, Event
from certrotate_shared.messages.replication import (
    BreakReplication,
    InspectSite,
    ReplicationBreakFailed,
    ReplicationBroken,
    ReplicationRestored,
    ReplicationRestoreFailed,
    RestoreReplication,
    SiteInspected,
)
from orchestrator.domain.state import SagaState


def inspect(s: SagaState, key: str, now: datetime) -> Command:
    return InspectSite(idempotency_key=key, site=s.target)


def inspected(s: SagaState, event: SiteInspected, now: datetime) -> None:
    s.partners = list(event.partners)


def break_partners(s: SagaState, key: str, now: datetime) -> Command:
    return BreakReplication(
        idempotency_key=key, site=s.target, partners=[p.name for p in s.partners]
    )


def broken(s: SagaState, event: ReplicationBroken, now: datetime) -> None:
    add_broken(s, event.broken_partners)


def break_failed(s: SagaState, event: ReplicationBreakFailed, now: datetime) -> str:
    add_broken(s, event.broken_partners)
    return event.reason


def break_abandoned(s: SagaState) -> None:
    # Any partnership may be gone: restoring one that is still there is a no-op.
    add_broken(s, [p.name for p in s.partners])


def break_answered_late(s: SagaState, event: Event) -> str | None:
    if not isinstance(event, ReplicationBroken | ReplicationBreakFailed):
        return None
    add_broken(s, event.broken_partners)
    return f"replication with {', '.join(event.broken_partners) or 'nobody'} was broken"


def restore(s: SagaState, key: str, now: datetime) -> Command:
    return RestoreReplication(idempotency_key=key, site=s.target, partners=list(s.broken_partners))


def restored(s: SagaState, event: ReplicationRestored, now: datetime) -> None:
    s.restored_partners = list(event.partners)


def restore_failed(s: SagaState, event: ReplicationRestoreFailed, now: datetime) -> str:
    if event.status_code:
        return f"{event.reason} (status {event.status_code})"
    return event.reason


def add_broken(s: SagaState, partners: list[str]) -> None:
    for name in partners:
        if name not in s.broken_partners:
            s.broken_partners.append(name)
