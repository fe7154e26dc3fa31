"""The state of one rotation saga: everything the decisions and the rotation view need."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from certrotate_shared.messages.certificates import GroupVerification
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.replication import PartnerStatus

Status = Literal["running", "compensating", "paused", "completed", "compensated", "failed"]
TERMINAL: frozenset[str] = frozenset({"completed", "compensated", "failed"})
Phase = Literal["forward", "compensation"]
StepStatus = Literal["running", "done", "failed", "skipped", "waiting"]
ServerStatus = Literal[
    "pending", "updating", "updated", "failed", "rolling_back", "rolled_back", "rollback_failed"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class RetryPolicy(_Model):
    base_seconds: float = Field(30.0, gt=0)
    max_seconds: float = Field(3600.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=100)


class AnswerDeadlines(_Model):
    """How long (clock seconds) the saga waits for a worker's answer, by kind of step.

    On expiry the same command is re-sent with the same idempotency key (a worker answers a
    recorded outcome again); after `resends` the rotation pauses for a decision."""

    sepm_call_seconds: float = Field(300.0, gt=0)
    host_operation_seconds: float = Field(1800.0, gt=0)
    # A person does the host operation (manual driver): an open task is not a lost answer.
    manual_host_operation_seconds: float = Field(86400.0, gt=0)
    restore_replication_seconds: float = Field(4200.0, gt=0)
    resends: int = Field(2, ge=0, le=20)


class MaintenanceWindow(_Model):
    cron: str = Field(description="When the window opens, e.g. '0 22 * * 1-5'")
    duration_minutes: int = Field(gt=0, le=7 * 24 * 60)
    timezone: str = "UTC"


class RotationOptions(_Model):
    stale_horizon_days: float = Field(30.0, gt=0)
    # Fraction of the clients seen within the horizon that must have the policy (1.0 = all).
    propagation_threshold: float = Field(1.0, gt=0, le=1.0)
    max_wait_days: float = Field(14.0, gt=0)
    orphan_risk_budget: int = Field(0, ge=0)
    require_approval: bool = False
    maintenance_window: MaintenanceWindow | None = None
    exposure_limit_days: float = Field(21.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # Step name -> its own retry policy (e.g. a slower back-off for restore_replication).
    retry_per_step: dict[str, RetryPolicy] = Field(default_factory=dict)
    answer_deadlines: AnswerDeadlines = Field(default_factory=AnswerDeadlines)
    # Times the gate re-check may send the saga back to step 2 before it pauses for a decision.
    max_reenable_loops: int = Field(3, ge=1, le=20)

    def retry_for(self, step: str) -> RetryPolicy:
        return self.retry_per_step.get(step, self.retry)


class CertificateInfo(_Model):
    bundle_ref: str
    fingerprint_sha256: str
    subject: str = ""
    not_after: datetime | None = None
    sans: list[str] = Field(default_factory=list)


class Awaiting(_Model):
    """The command whose answer the saga waits for; answers match it by causation id."""

    step: str
    command: str
    idempotency_key: str
    message_id: str | None = None  # filled in when the command is put in the outbox
    watch_id: str | None = None
    server: str | None = None
    # Earlier sends of this same command (same key) after a deadline: their answers count too.
    earlier_message_ids: list[str] = Field(default_factory=list)
    resends: int = 0

    def answered_by(self, causation_id: str | None) -> bool:
        return causation_id is not None and (
            causation_id == self.message_id or causation_id in self.earlier_message_ids
        )


class Abandoned(_Model):
    """A command the saga stopped waiting for (cancelled in flight): its answer may still come."""

    step: str
    command: str
    idempotency_key: str
    message_ids: list[str]
    server: str | None = None
    at: datetime
    answer: str | None = None  # the late answer's type, once it came


class StepRecord(_Model):
    name: str
    number: int | None
    title: str
    phase: Phase
    status: StepStatus = "running"
    attempts: int = 0
    started_at: datetime
    finished_at: datetime | None = None
    server: str | None = None
    detail: str | None = None


class ServerProgress(_Model):
    name: str
    status: ServerStatus = "pending"
    fingerprint_before: str | None = None
    fingerprint_after: str | None = None
    ports_verified: dict[str, str] = Field(default_factory=dict)
    backup_ref: str | None = None
    error: str | None = None


class PropagationReading(_Model):
    total: int
    reached: int
    pending_online: int
    pending_offline: int
    pending_offline_by_days: dict[str, int] = Field(default_factory=dict)
    orphan_risk: int
    stale: int
    percent: float
    forecast_complete_at: datetime | None = None
    observed_at: datetime


class PropagationWait(_Model):
    step: str
    watch_id: str
    target_serials: dict[str, str]  # group id -> serial waited for
    started_at: datetime
    deadline: datetime
    outcome: Literal["waiting", "propagated", "stalled", "timed_out", "failed", "cancelled"] = (
        "waiting"
    )
    finished_at: datetime | None = None
    reading: PropagationReading | None = None
    detail: str | None = None


class Approval(_Model):
    by: str
    at: datetime
    note: str = ""
    principal: str | None = None  # the approver's API token id


class RiskAcceptance(_Model):
    """An operator's decision to go on although clients may be cut off; named in the history."""

    by: str
    at: datetime
    reason: str
    change_id: str | None = None
    accepted_count: int
    step: str
    principal: str | None = None  # the API token id of who accepted it


DecisionKind = Literal[
    "propagation_wait", "orphan_risk", "step_failed", "after_swap_wait", "no_answer",
    "dead_letter", "verification_reenabled",
]  # fmt: skip
DecisionOption = Literal["extend", "proceed", "abort", "retry", "compensate", "mark_done"]


class PendingDecision(_Model):
    kind: DecisionKind
    step: str
    reason: str
    options: list[DecisionOption]
    since: datetime


class ReenabledFinding(_Model):
    """The check before the swap found verification on again (another administrator)."""

    at: datetime
    locations: list[str]  # "group path (location id)"
    locations_checked: int


class ExposureAlert(_Model):
    at: datetime
    verification_off_since: datetime
    limit_days: float


class SagaState(_Model):
    saga_id: str
    site: str
    target: SiteTarget
    certificate: CertificateInfo
    options: RotationOptions
    requested_by: str = ""
    change_id: str | None = None

    status: Status = "running"
    phase: Phase = "forward"
    step: str = "inspect"
    attempt: int = 0
    # Attempts before this count were used up earlier (an operator's "extend" grants new ones).
    attempt_base: int = 0
    server_index: int = 0
    awaiting: Awaiting | None = None
    abandoned: list[Abandoned] = Field(default_factory=list)
    # A command the operator hold kept back; sent on resume.
    deferred: bool = False
    hold: bool = False
    hold_reason: str | None = None
    pending_decision: PendingDecision | None = None
    abort_requested: str | None = None
    reason: str | None = None

    partners: list[PartnerStatus] = Field(default_factory=list)
    broken_partners: list[str] = Field(default_factory=list)
    restored_partners: list[PartnerStatus] = Field(default_factory=list)
    disabled_groups: list[GroupVerification] = Field(default_factory=list)
    restored_groups: list[GroupVerification] = Field(default_factory=list)
    verification_touched: bool = False
    verification_off_since: datetime | None = None
    verification_restored_at: datetime | None = None
    exposure_alert: ExposureAlert | None = None
    servers: list[ServerProgress] = Field(default_factory=list)
    rollback_queue: list[str] = Field(default_factory=list)
    swap_started: bool = False
    swap_done: bool = False
    propagation_gate_passed: bool = False
    # Each time the check before the swap found verification back on (and sent us to step 2).
    reenabled_findings: list[ReenabledFinding] = Field(default_factory=list)
    waits: list[PropagationWait] = Field(default_factory=list)
    approval: Approval | None = None
    risk_acceptance: RiskAcceptance | None = None
    gate_waiting_for: list[str] = Field(default_factory=list)
    timers: dict[str, datetime] = Field(default_factory=dict)
    steps: list[StepRecord] = Field(default_factory=list)
    # The W3C trace context of the last transition (observability only; no decision reads it),
    # so that a timer's transition continues the rotation's trace.
    trace_context: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def server(self, name: str) -> ServerProgress:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(name)

    def current_wait(self, step: str | None = None) -> PropagationWait | None:
        for wait in reversed(self.waits):
            if step is None or wait.step == step:
                return wait
        return None

    def current_step_record(self) -> StepRecord | None:
        return self.steps[-1] if self.steps else None
