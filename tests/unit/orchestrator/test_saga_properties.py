"""Random event sequences (duplicates, reordering, failures, timers, operator actions) never
make the saga swap a certificate too early, re-enable verification too early, or get lost."""

from __future__ import annotations

import uuid
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certrotate_shared.envelope import Event, Message
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    CheckCertificateVerification,
    LocationVerification,
    RollbackServerCertificate,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation, PolicyPropagated
from certrotate_shared.messages.replication import ReplicationBreakFailed, ReplicationBroken
from orchestrator.domain.inputs import (
    ActionRejectedError,
    ApprovalGiven,
    CancelRequested,
    DecisionMade,
    EventArrived,
    Input,
    PauseRequested,
    ResumeRequested,
    TimerFired,
    TimerKind,
)
from orchestrator.domain.saga import Decision
from orchestrator.domain.state import (
    DecisionOption,
    MaintenanceWindow,
    RetryPolicy,
    RotationOptions,
)
from tests.unit.orchestrator.saga_driver import (
    OLD_FP,
    SagaDriver,
    failure,
    parked,
    progressed,
    stalled,
    success,
)

pytestmark = pytest.mark.unit

# Healthy answers dominate, so random histories get deep into the saga before things go wrong.
MOVES = ["ok"] * 12 + [
    "bad_ports", "fail_retry", "fail_retry", "fail_final", "progress", "stall", "stall",
    "duplicate", "duplicate", "late", "late", "timer", "timer", "pause", "resume", "cancel",
    "approve", "approve", "extend", "proceed", "abort", "deadline", "deadline", "parked",
    "retry", "compensate", "mark_done", "reenabled", "reenabled", "reenabled", "reenabled",
]  # fmt: skip


class Checked(SagaDriver):
    """A driver that checks the safety properties on every decision, from its own records."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.delivered: list[tuple[Event, str | None]] = []
        self.disabled: set[tuple[str, str]] = set()
        self.watches: dict[str, set[tuple[str, str]]] = {}
        self.gate_passed = False
        # The last check before the swap found verification off everywhere (or a person
        # accepted that it is not, on the record).
        self.check_clean = False
        self.verified: set[str] = set()
        self.changed = False
        self.rolled_back = False
        self.all_servers = {s.name for s in self.state.target.servers}

    def _absorb(self, decision: Decision) -> Decision:
        for out in decision.outgoing:
            self._check_outgoing(out.message)
        return super()._absorb(decision)

    def _check_outgoing(self, message: Message) -> None:
        if isinstance(message, AwaitPolicyPropagation):
            self.watches[message.watch_id] = {(g.group_id, g.target_serial) for g in message.groups}
        if isinstance(message, UpdateServerCertificate):
            assert self.gate_passed, "UpdateServerCertificate before the propagation gate passed"
            assert self.check_clean, "UpdateServerCertificate while verification was found on"
            assert not self.rolled_back, "UpdateServerCertificate after a rollback began"
        if isinstance(message, RollbackServerCertificate):
            self.rolled_back = True
        if (
            isinstance(message, SetCertificateVerification)
            and ":enable_verification:" in message.idempotency_key
        ):
            assert self.verified == self.all_servers, (
                "verification re-enabled before every server served the new certificate"
            )

    def deliver(self, event: Event, causation: str | None) -> None:
        # What the event proves is credited before the decision (its commands are checked as
        # they come out) and withdrawn if the saga ignored the event.
        before = (
            self.disabled, self.gate_passed, set(self.verified), self.changed, self.check_clean
        )  # fmt: skip
        if isinstance(event, CertificateVerificationChecked):
            self.check_clean = not event.enabled
        if isinstance(event, CertificateVerificationSet) and event.mode == "disable":
            self.disabled = {(g.group_id, g.target_serial) for g in event.groups}
            self.changed = True
        if isinstance(event, PolicyPropagated):
            covered = self.watches.get(event.watch_id, set())
            if self.disabled and self.disabled <= covered and event.orphan_risk == 0:
                self.gate_passed = True
        if isinstance(event, ServerCertificateUpdated):
            expected = self.state.certificate.fingerprint_sha256
            if event.fingerprint == expected and set(event.ports_verified.values()) == {expected}:
                self.verified.add(event.server)
            self.changed = True
        if isinstance(event, ReplicationBroken | ReplicationBreakFailed) and event.broken_partners:
            self.changed = True
        if isinstance(event, CertificateVerificationFailed) and event.mode == "disable":
            self.changed = True
        if isinstance(event, ServerCertificateUpdateFailed) and event.backup_ref:
            self.changed = True
        decision = self.apply(EventArrived(event, str(uuid.uuid4()), causation))
        self.delivered.append((event, causation))
        if decision.ignored:
            (self.disabled, self.gate_passed, self.verified, self.changed,
             self.check_clean) = before  # fmt: skip

    def act(self, action: Input) -> bool:
        before = (self.gate_passed, self.check_clean)
        pending = self.state.pending_decision
        if (
            isinstance(action, DecisionMade)
            and action.decision == "proceed"
            and pending is not None
            and pending.kind == "verification_reenabled"
        ):
            self.check_clean = True  # a person accepted it, on the record
        if (
            isinstance(action, DecisionMade)
            and action.decision == "proceed"
            and self.state.step in ("await_disable_propagation", "gates")
        ):
            self.gate_passed = True  # an operator accepted the risk, on the record
        try:
            self.apply(action)
        except ActionRejectedError:
            self.gate_passed, self.check_clean = before
            return False
        return True


def reenabled(n: int) -> CertificateVerificationChecked:
    """Another administrator turned verification back on in one location."""
    location = LocationVerification(
        group_id=f"G{n % 2}", full_path_name=f"My Company\\G{n % 2}", location_id="L1",
        secure_communications=True,
    )  # fmt: skip
    return CertificateVerificationChecked(site="site-a", enabled=[location], locations_checked=2)


def play(d: Checked, move: str, n: int) -> None:
    s = d.state
    command = d.awaited if s.awaiting is not None else None
    current = s.awaiting.message_id if s.awaiting else None
    if move in ("ok", "bad_ports") and command is not None:
        event = success(command)
        if move == "bad_ports" and isinstance(event, ServerCertificateUpdated):
            event = event.model_copy(
                update={"ports_verified": {**event.ports_verified, "443": OLD_FP}}
            )
        d.deliver(event, current)
    elif move in ("fail_retry", "fail_final") and command is not None:
        d.deliver(failure(command, retryable=move == "fail_retry", backup=n % 2 == 0), current)
    elif move in ("progress", "stall") and isinstance(command, AwaitPolicyPropagation):
        event = progressed(command) if move == "progress" else stalled(command, orphan_risk=n % 4)
        d.deliver(event, current)
    elif move == "duplicate" and d.delivered:
        event, causation = d.delivered[n % len(d.delivered)]
        d.deliver(event, causation)
    elif move == "late" and d.sent:
        message_id, message = d.sent[n % len(d.sent)]
        try:
            d.deliver(success(message), message_id)
        except AssertionError:
            pass  # not a command with a success event (purge, cancel, alert)
    elif move == "timer" and s.timers:
        kind = sorted(s.timers)[n % len(s.timers)]
        due = s.timers[kind]
        d.now = max(d.now, due)
        d.apply(TimerFired(cast(TimerKind, kind), due))  # the saga's timers use these keys
    elif move == "pause":
        d.act(PauseRequested(by="ops"))
    elif move == "resume":
        d.act(ResumeRequested(by="ops"))
    elif move == "cancel":
        d.act(CancelRequested(by="ops", reason="random cancel"))
    elif move == "approve":
        d.act(ApprovalGiven(by="boss"))
    elif move == "deadline" and "deadline" in s.timers:
        due = s.timers["deadline"]
        d.now = max(d.now, due)
        d.apply(TimerFired("deadline", due))
    elif move == "reenabled" and isinstance(command, CheckCertificateVerification):
        d.deliver(reenabled(n), current)
    elif move == "parked" and command is not None:
        d.deliver(parked(command, current), None)
    elif move in ("extend", "proceed", "abort", "retry", "compensate", "mark_done"):
        decision = cast(DecisionOption, move)  # one of the options, just tested
        d.act(DecisionMade(by="ops", decision=decision, reason="random", accepted_count=n % 4))


def drain(d: Checked) -> None:
    """Let healthy workers and a decisive operator finish the rotation."""
    for _ in range(300):
        s = d.state
        if s.terminal:
            return
        if s.hold:
            d.act(ResumeRequested(by="ops"))
        elif s.pending_decision is not None:
            options = s.pending_decision.options
            choice = next(
                o
                for o in ("abort", "compensate", "proceed", "extend", "retry", "mark_done")
                if o in options
            )
            assert d.act(DecisionMade(by="ops", decision=choice, reason="drain"))
        elif s.awaiting is not None:
            d.deliver(success(d.awaited), s.awaiting.message_id)
        elif s.timers:
            kind = min(s.timers, key=lambda k: s.timers[k])
            d.now = max(d.now, s.timers[kind])
            d.apply(TimerFired(cast(TimerKind, kind), s.timers[kind]))
        elif "approval" in s.gate_waiting_for:
            d.act(ApprovalGiven(by="boss"))
        else:
            raise AssertionError(f"saga stuck at {s.step} ({s.status}) with nothing to wait for")
    raise AssertionError("saga did not finish")


OPTIONS = st.builds(
    RotationOptions,
    require_approval=st.booleans(),
    orphan_risk_budget=st.sampled_from([0, 0, 2]),
    maintenance_window=st.sampled_from(
        [None, MaintenanceWindow(cron="0 22 * * *", duration_minutes=90, timezone="Europe/Berlin")]
    ),
    retry=st.just(RetryPolicy(base_seconds=5, max_seconds=60, max_attempts=2)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=OPTIONS,
    servers=st.integers(1, 3),
    moves=st.lists(st.tuples(st.sampled_from(MOVES), st.integers(0, 50)), max_size=60),
)
def test_random_histories_keep_the_safety_properties_and_always_end(options, servers, moves):
    d = Checked(servers=servers, options=options)
    for move, n in moves:
        if d.state.terminal:
            break
        play(d, move, n)
    drain(d)
    assert d.state.status in ("completed", "compensated", "failed")
    if d.state.status == "failed":
        assert not d.changed, "a rotation that changed something must compensate, not fail"
        assert d.state.reason is not None
        assert d.state.reason.endswith("nothing was changed")
    if d.state.status == "completed":
        assert d.verified == d.all_servers
    if d.state.status == "compensated":
        left = [p.name for p in d.state.servers if p.status in ("updated", "updating")]
        assert not left, f"compensated with {left} possibly serving the new certificate"
