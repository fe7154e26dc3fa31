"""The rotation as the API answers it: the response models of /v1/rotations.

They copy the saga state's shapes on purpose rather than reuse them: the stored state may
change (a field renamed, a step added) without a client noticing, and a change here shows up in
the OpenAPI snapshot. Every field is always answered (null when unknown) unless noted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.step_kinds import Step
from orchestrator.domain.steps import TABLES
from orchestrator.entrypoints.gate_models import GatesOut
from orchestrator.entrypoints.read_model import Out, absent_when_none
from orchestrator.entrypoints.tasks import TaskOut

RotationStatus = Literal["running", "compensating", "paused", "completed", "compensated", "failed"]


class StepNow(Out):
    name: str
    number: int | None = Field(description="The vendor procedure's step number (none: a gate)")
    title: str


class CurrentStepOut(StepNow):
    attempt: int
    server: str | None = Field(description="The server the step works on now, if per server")
    waiting_for: str | None = Field(description="The command whose answer the saga waits for")


class RotationSummaryOut(Out):
    id: str
    site: str
    state: RotationStatus
    current_step: StepNow
    reason: str | None
    change_id: str | None
    created_at: datetime
    updated_at: datetime


class RotationPage(Out):
    items: list[RotationSummaryOut]
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page")


class CertificateOut(Out):
    fingerprint_sha256: str
    subject: str
    not_after: datetime | None
    sans: list[str]


class RetryPolicyOut(Out):
    base_seconds: float
    max_seconds: float
    max_attempts: int


class WindowOut(Out):
    cron: str
    duration_minutes: int
    timezone: str


class AnswerDeadlinesOut(Out):
    sepm_call_seconds: float
    host_operation_seconds: float
    manual_host_operation_seconds: float
    restore_replication_seconds: float
    resends: int


class OptionsOut(Out):
    stale_horizon_days: float
    propagation_threshold: float
    max_wait_days: float
    orphan_risk_budget: int
    require_approval: bool
    maintenance_window: WindowOut | None
    exposure_limit_days: float
    retry: RetryPolicyOut
    retry_per_step: dict[str, RetryPolicyOut]
    answer_deadlines: AnswerDeadlinesOut
    max_reenable_loops: int


WaitOutcome = Literal["waiting", "propagated", "stalled", "timed_out", "failed", "cancelled"]
_ONCE_READ = "Once the watch's first reading came"


class PropagationWaitOut(Out):
    """One propagation watch; the reading's counts are answered once a reading came."""

    step: str
    watch_id: str
    outcome: WaitOutcome
    started_at: datetime
    finished_at: datetime | None
    deadline: datetime
    target_serials: dict[str, str] = Field(description="group id -> the serial waited for")
    detail: str | None
    total: int | None = absent_when_none(_ONCE_READ)
    reached: int | None = absent_when_none(_ONCE_READ)
    pending_online: int | None = absent_when_none(_ONCE_READ)
    pending_offline: int | None = absent_when_none(_ONCE_READ)
    pending_offline_by_days: dict[str, int] | None = absent_when_none(_ONCE_READ)
    orphan_risk: int | None = absent_when_none(_ONCE_READ)
    stale: int | None = absent_when_none(_ONCE_READ)
    percent: float | None
    forecast_complete_at: datetime | None
    observed_at: datetime | None = absent_when_none(_ONCE_READ)


class ServerProgressOut(Out):
    name: str
    status: Literal[
        "pending", "updating", "updated", "failed", "rolling_back", "rolled_back",
        "rollback_failed",
    ]  # fmt: skip
    fingerprint_before: str | None
    fingerprint_after: str | None
    ports_verified: dict[str, str] = Field(description="SEPM listener -> fingerprint served")
    backup_taken: bool
    error: str | None


class PartnerOut(Out):
    name: str
    status_code: str
    last_successful_run_time: int | None


class ReplicationOut(Out):
    partners: list[PartnerOut]
    broken: list[str]
    restored: list[PartnerOut]


class ExposureAlertOut(Out):
    at: datetime
    verification_off_since: datetime
    limit_days: float


class GroupOut(Out):
    group_id: str
    full_path_name: str
    original_values: dict[str, bool] = Field(
        description="location id -> its secure-communications setting before the change"
    )
    target_serial: str


class VerificationOut(Out):
    off_since: datetime | None
    restored_at: datetime | None
    exposure_limit_days: float
    exposure_alert: ExposureAlertOut | None
    groups: list[GroupOut]


class StepRecordOut(Out):
    name: str
    number: int | None
    title: str
    phase: Literal["forward", "compensation"]
    status: Literal["running", "done", "failed", "skipped", "waiting"]
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    server: str | None
    detail: str | None


DecisionOption = Literal["extend", "proceed", "abort", "retry", "compensate", "mark_done"]


class PendingDecisionOut(Out):
    kind: str = Field(description="What the rotation stopped for, e.g. propagation_wait")
    step: str
    reason: str
    options: list[DecisionOption]
    since: datetime


class HoldOut(Out):
    paused: bool
    reason: str | None


class RotationOut(RotationSummaryOut):
    """Every reading an operator needs on one page."""

    phase: Literal["forward", "compensation"]
    current_step: CurrentStepOut
    requested_by: str
    certificate: CertificateOut
    options: OptionsOut
    gates: GatesOut
    propagation: list[PropagationWaitOut]
    servers: list[ServerProgressOut]
    replication: ReplicationOut
    verification: VerificationOut
    steps: list[StepRecordOut]
    pending_decision: PendingDecisionOut | None
    hold: HoldOut
    cancel_requested: str | None = Field(description="The reason given, once cancel is asked")
    open_tasks: list[TaskOut]
    timers: dict[str, datetime] = Field(description="timer kind -> when it fires")


class HistoryEntryOut(Out):
    seq: int = Field(description="Position in the rotation's history: the next page's `after`")
    at: datetime
    kind: str = Field(description="command, event, ignored, timer, operator or note")
    type: str
    step: str | None
    message_id: str | None
    causation_id: str | None
    actor: str | None
    detail: dict[str, Any] | None


class HistoryPage(Out):
    items: list[HistoryEntryOut]
    next_after: int | None = Field(description="`after` for the next page; null on the last")


class ClientRowOut(BaseModel):
    """One SEPM client as the client monitor lists it (its columns may grow)."""

    model_config = ConfigDict(extra="allow")
    uniqueId: str  # SEPM's own name, as in its CSV


class ClientListOut(BaseModel):
    """A client list (format=json), streamed; `next_cursor` also in the X-Next-Cursor header."""

    model_config = ConfigDict(extra="allow")
    clients: list[ClientRowOut]
    next_cursor: str | None


def streamed_list(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """The OpenAPI entry of a 200 streamed as JSON (`model`) or in another format asked."""
    return {
        "model": model,
        "content": {media: {"schema": {"type": "string"}} for media in media_types},
    }


def view_revision(tables: Mapping[str, Sequence[Step]]) -> str:
    """Part of every rotation view's entity tag: an answer of another shape, or one that names
    its steps differently (titles come from the step tables, not from the stored state), is
    another answer, so an upgrade never answers 304 to a tag taken before it."""
    steps = {phase: [(s.name, s.number, s.title) for s in table] for phase, table in tables.items()}
    shape = RotationOut.model_json_schema(mode="serialization")
    return hashlib.blake2b(
        json.dumps([shape, steps], sort_keys=True).encode(), digest_size=4
    ).hexdigest()


VIEW_REVISION = view_revision(TABLES)
