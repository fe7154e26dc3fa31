"""The four gates before the certificate swap, as a rotation's view shows them: propagation,
the orphan risk (and an accepted one), the approval and the maintenance window."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from orchestrator.entrypoints.read_model import Out, absent_when_none


class PropagationGateOut(Out):
    passed: bool
    threshold: float
    stale_horizon_days: float
    percent: float | None
    reached: int | None
    total: int | None
    pending_online: int | None
    pending_offline: int | None
    stale: int | None


class RiskAcceptanceOut(Out):
    by: str
    at: datetime
    reason: str
    change_id: str | None
    accepted_count: int
    step: str
    principal: str | None


class OrphanRiskGateOut(Out):
    at_risk: int | None = Field(description="Clients the swap would cut off, at the last reading")
    budget: int
    passed: bool
    accepted: RiskAcceptanceOut | None


class ApprovalGateOut(Out):
    required: bool
    passed: bool
    approved_by: str | None
    approved_at: datetime | None
    note: str | None


class WindowGateOut(Out):
    configured: bool
    cron: str | None = absent_when_none("Only when a window is configured")
    duration_minutes: int | None = absent_when_none("Only when a window is configured")
    timezone: str | None = absent_when_none("Only when a window is configured")
    open_now: bool | None
    passed: bool
    next_opening: datetime | None


class GatesOut(Out):
    propagation: PropagationGateOut
    orphan_risk: OrphanRiskGateOut
    approval: ApprovalGateOut
    maintenance_window: WindowGateOut
    waiting_for: list[str] = Field(description="The gates the swap still waits for")
