"""Drives the pure saga like the service layer would, answering commands like the workers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from certrotate_shared.envelope import Command, Event, Message
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    CheckCertificateVerification,
    GroupVerification,
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
    PropagationProgressed,
    PropagationStalled,
    PropagationWatchFailed,
)
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.messages.replication import (
    BreakReplication,
    InspectSite,
    PartnerStatus,
    ReplicationBreakFailed,
    ReplicationBroken,
    ReplicationRestored,
    ReplicationRestoreFailed,
    RestoreReplication,
    SiteInspected,
    SiteInspectionFailed,
)
from orchestrator.domain.inputs import EventArrived, Input, TimerFired, TimerKind
from orchestrator.domain.saga import Decision, decide, start_saga
from orchestrator.domain.state import CertificateInfo, RotationOptions, SagaState

C = TypeVar("C", bound=Command)
M = TypeVar("M", bound=Message)

NEW_FP = "aa" * 32
OLD_FP = "bb" * 32
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PORTS = {"8443": 18443, "8446": 18446, "443": 10443, "8014": 18014}


def site_target(servers: int = 2) -> SiteTarget:
    return SiteTarget(
        site="site-a",
        version="14.3.9000",
        api_url="https://sepm-a1:8446/sepm/api/v1",
        credential_ref="sepm/site-a",
        servers=[
            ServerTarget(
                name=f"sepm-a{i + 1}", address="127.0.0.1", version="14.3.9000", ports=PORTS
            )
            for i in range(servers)
        ],
        host_ops=HostOpsTarget(driver="twin", endpoint="http://twin"),
    )


def counts(watch_id: str, *, orphan_risk: int = 0, reached: int = 100) -> dict[str, Any]:
    return {
        "site": "site-a",
        "watch_id": watch_id,
        "total": 100,
        "reached": reached,
        "pending_online": 100 - reached,
        "pending_offline": 0,
        "pending_offline_by_days": {},
        "orphan_risk": orphan_risk,
        "stale": 0,
        "percent": float(reached),
        "observed_at": START,
    }


def groups(mode: str) -> list[GroupVerification]:
    return [
        GroupVerification(
            group_id=f"G{i}",
            full_path_name=f"My Company\\G{i}",
            original_values={"L1": True},
            target_serial=f"G{i}-{mode}",
        )
        for i in range(2)
    ]


def success(command: Message, *, partners: list[str] | None = None) -> Event:
    """The event a healthy worker answers a command with."""
    if isinstance(command, InspectSite):
        names = ["site-b"] if partners is None else partners
        return SiteInspected(
            site="site-a",
            version="14.3.9000",
            replicated=bool(names),
            partners=[PartnerStatus(name=n, status_code="SUCCEEDED") for n in names],
        )
    if isinstance(command, BreakReplication):
        return ReplicationBroken(site="site-a", broken_partners=list(command.partners))
    if isinstance(command, SetCertificateVerification):
        return CertificateVerificationSet(
            site="site-a", mode=command.mode, groups=groups(command.mode)
        )
    if isinstance(command, AwaitPolicyPropagation):
        return PolicyPropagated(**counts(command.watch_id))
    if isinstance(command, CheckCertificateVerification):
        return CertificateVerificationChecked(site="site-a", enabled=[], locations_checked=2)
    if isinstance(command, UpdateServerCertificate):
        fp = command.expected_fingerprint
        return ServerCertificateUpdated(
            site="site-a",
            server=command.server.name,
            fingerprint=fp,
            backup_ref=f"backup-{command.server.name}",
            ports_verified={p: fp for p in command.server.tls_ports()},
            previous_fingerprint=OLD_FP,
        )
    if isinstance(command, RollbackServerCertificate):
        return ServerCertificateRolledBack(
            site="site-a", server=command.server.name, fingerprint=command.expected_fingerprint
        )
    if isinstance(command, RestoreReplication):
        return ReplicationRestored(
            site="site-a",
            partners=[PartnerStatus(name=n, status_code="SUCCEEDED") for n in command.partners],
        )
    raise AssertionError(f"no success for {command!r}")


def failure(command: Message, *, retryable: bool, backup: bool = True) -> Event:
    """The typed failure a worker answers a command with."""
    if isinstance(command, InspectSite):
        return SiteInspectionFailed(site="site-a", reason="SEPM unreachable", retryable=retryable)
    if isinstance(command, BreakReplication):
        return ReplicationBreakFailed(
            site="site-a", reason="partner delete refused", retryable=retryable,
            broken_partners=command.partners[:1] if backup else [],
        )  # fmt: skip
    if isinstance(command, SetCertificateVerification):
        return CertificateVerificationFailed(
            site="site-a", mode=command.mode, reason="PATCH failed", retryable=retryable
        )
    if isinstance(command, CheckCertificateVerification):
        return CertificateVerificationCheckFailed(
            site="site-a", reason="GET settings failed", retryable=retryable
        )
    if isinstance(command, AwaitPolicyPropagation):
        return PropagationWatchFailed(
            site="site-a", watch_id=command.watch_id, reason="scan failed", retryable=retryable
        )
    if isinstance(command, UpdateServerCertificate):
        return ServerCertificateUpdateFailed(
            site="site-a", server=command.server.name, stage="restart", reason="semsrv hung",
            retryable=retryable, backup_ref=f"backup-{command.server.name}" if backup else None,
        )  # fmt: skip
    if isinstance(command, RollbackServerCertificate):
        return ServerCertificateRollbackFailed(
            site="site-a", server=command.server.name, reason="restore failed", retryable=retryable
        )
    if isinstance(command, RestoreReplication):
        return ReplicationRestoreFailed(
            site="site-a", reason="replication failed", retryable=retryable,
            status_code="FAILED_CONNECT",
        )  # fmt: skip
    raise AssertionError(f"no failure for {command!r}")


def parked(command: Message, message_id: str | None, *, service: str = "certificates") -> Event:
    """What a consumer publishes when it gives up on a command and parks it in the DLQ."""
    return MessageDeadLettered(
        service=service, message_id=message_id or "", message_type=command.type_name(),
        idempotency_key=getattr(command, "idempotency_key", None),
        topic=f"certrotate.{service}.commands", partition=0, offset=7, attempts=5,
        error="KeyError: 'groups'", envelope={"message_id": message_id, "type": command.type_name()},
    )  # fmt: skip


def stalled(command: AwaitPolicyPropagation, orphan_risk: int = 3) -> Event:
    return PropagationStalled(**counts(command.watch_id, orphan_risk=orphan_risk, reached=97),
                              reason="no progress for 2 days")  # fmt: skip


def progressed(command: AwaitPolicyPropagation, reached: int = 60, orphan_risk: int = 40) -> Event:
    return PropagationProgressed(
        **counts(command.watch_id, orphan_risk=orphan_risk, reached=reached)
    )


class SagaDriver:
    """Holds one saga's state and the log of every message it sent, with ids like the outbox."""

    def __init__(
        self, *, servers: int = 2, options: RotationOptions | None = None, now: datetime = START
    ) -> None:
        self.now = now
        self.sent: list[tuple[str, Message]] = []
        self.decisions: list[Decision] = []
        decision = start_saga(
            saga_id=str(uuid.uuid4()),
            target=site_target(servers),
            certificate=CertificateInfo(bundle_ref="bundle-1", fingerprint_sha256=NEW_FP),
            options=options or RotationOptions(),
            now=now,
            requested_by="ops",
        )
        self.state: SagaState = self._absorb(decision).state

    def _absorb(self, decision: Decision) -> Decision:
        for out in decision.outgoing:
            message_id = str(uuid.uuid4())
            self.sent.append((message_id, out.message))
            if out.awaited:
                assert decision.state.awaiting is not None
                decision.state.awaiting.message_id = message_id
        self.decisions.append(decision)
        self.state = decision.state
        return decision

    def apply(self, given: Input) -> Decision:
        return self._absorb(decide(self.state, given, self.now))

    @property
    def awaited(self) -> Command:
        assert self.state.awaiting is not None, f"nothing awaited (step {self.state.step})"
        message_id = self.state.awaiting.message_id
        command = next(m for i, m in self.sent if i == message_id)
        assert isinstance(command, Command)
        return command

    def awaited_as(self, kind: type[C]) -> C:
        """The awaited command, which the test knows to be a `kind`."""
        command = self.awaited
        assert isinstance(command, kind), f"awaiting {type(command).__name__}, not {kind.__name__}"
        return command

    def answer(self, event: Event, *, to: str | None = None) -> Decision:
        causation = to or (self.state.awaiting.message_id if self.state.awaiting else None)
        return self.apply(EventArrived(event, str(uuid.uuid4()), causation))

    def ok(self, **kwargs: Any) -> Decision:
        return self.answer(success(self.awaited, **kwargs))

    def fail(self, *, retryable: bool = False, **kwargs: Any) -> Decision:
        return self.answer(failure(self.awaited, retryable=retryable, **kwargs))

    def park(self, **kwargs: Any) -> Decision:
        """The awaited command is parked in the DLQ by its consumer."""
        assert self.state.awaiting is not None
        return self.answer(parked(self.awaited, self.state.awaiting.message_id, **kwargs), to=None)

    def fire(self, kind: TimerKind) -> Decision:
        due = self.state.timers[kind]
        self.now = max(self.now, due)
        return self.apply(TimerFired(kind, due))

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    @overload
    def commands(self) -> list[Message]: ...
    @overload
    def commands(self, kind: type[M]) -> list[M]: ...
    def commands(self, kind: type[Message] | None = None) -> list[Any]:
        return [m for _, m in self.sent if kind is None or isinstance(m, kind)]

    def run_to(self, step: str, **kwargs: Any) -> None:
        """Answer every command successfully until the saga reaches `step`."""
        while self.state.step != step:
            if self.state.step == "gates":
                raise AssertionError(f"stuck at the gates: {self.state.gate_waiting_for}")
            self.ok(**kwargs)
