"""The campaign as the API answers it: the response models of /v1/campaigns.

Apart from the stored campaign state (domain/campaign.py) for the same reason as the rotation's
(rotation_models.py). A few instants are answered as the campaign recorded them (ISO 8601 text
with its offset), the others as pydantic writes them (UTC, "Z"): both parse as date-times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from orchestrator.entrypoints.read_model import Out, absent_when_none
from orchestrator.entrypoints.rotation_models import (
    DecisionOption,
    PendingDecisionOut,
    RotationStatus,
    WindowOut,
)

Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
CampaignStatus = Literal[
    "running", "paused", "awaiting_approval", "halted", "cancelling", "cancelled", "aborted",
    "completed",
]  # fmt: skip
SiteStatus = Literal[
    "pending", "starting", "running", "completed", "compensated", "failed", "cancelled",
    "skipped",
]  # fmt: skip


class CampaignDecisionOut(Out):
    kind: Literal["failure_budget", "wave_approval", "orphaned_clients"]
    wave: int
    reason: str
    since: datetime


class CampaignSummaryOut(Out):
    id: str
    name: str
    state: CampaignStatus
    created_by: str
    created_at: Instant
    updated_at: Instant
    change_id: str | None
    current_wave: int = Field(description="1 = the first wave")
    waves: int
    sites_by_state: dict[str, int]
    failures: int
    failure_budget: int
    tolerated_failures: int
    max_concurrent: int
    approve_each_wave: bool
    decision_waiting: CampaignDecisionOut | None
    targets: dict[str, Any] = Field(description="The plan as asked and what each tag named then")
    wave_opens_at: Instant | None


class CampaignList(Out):
    items: list[CampaignSummaryOut]


class SiteClientsOut(Out):
    """The rotation's latest reading of its fleet."""

    step: str
    total: int
    reached: int
    pending: int
    at_risk: int
    observed_at: Instant


class CampaignSiteOut(Out):
    site: str
    status: SiteStatus
    rotation_id: str | None
    note: str | None
    farm: str = Field(description="The replication farm (its first site): one rotation at a time")
    orphaned_outside_risk: int
    window: WindowOut | None
    opens_at: datetime | None
    partners_left_broken: list[str]
    started_at: datetime | None
    ended_at: datetime | None
    clients: SiteClientsOut | None
    rotation_state: RotationStatus | None = absent_when_none("Only while its rotation is read")


class WaveOut(Out):
    wave: int
    sites: list[CampaignSiteOut]


class RotationWaitingOut(Out):
    site: str
    rotation_id: str
    rotation_state: RotationStatus
    waiting_for: list[str]


class ClientsOut(Out):
    total: int
    reached: int
    pending: int
    at_risk: int
    orphaned_outside_risk: int
    sites_reporting: int


class DecisionWaitingOut(Out):
    """The campaign's decision or one of its rotations' (scope); fields by scope and kind."""

    scope: Literal["campaign", "rotation"]
    kind: str
    reason: str
    wave: int | None = absent_when_none("The campaign's decisions")
    site: str | None = absent_when_none("A rotation's decisions")
    rotation_id: str | None = absent_when_none("A rotation's decisions")
    step: str | None = absent_when_none("A rotation's pause for a person")
    options: list[DecisionOption] | None = absent_when_none("A rotation's pause for a person")
    since: datetime | None = absent_when_none("Not for a gate's approval")


class ProgressOut(Out):
    clients: ClientsOut
    forecast_end: Instant | None
    decisions_waiting: list[DecisionWaitingOut]


class CampaignEventOut(Out):
    """What the campaign did; the other fields depend on its type."""

    model_config = ConfigDict(extra="allow")
    seq: int
    at: Instant
    type: str


class CampaignOut(CampaignSummaryOut):
    plan: list[WaveOut]
    rotations_waiting: list[RotationWaitingOut]
    progress: ProgressOut
    events: list[CampaignEventOut]


class CampaignWaveOut(Out):
    campaign_id: str
    wave: int
    state: Literal["ended", "running", "waiting"]
    window: WindowOut | None
    opens_at: Instant | None
    sites: list[CampaignSiteOut]
    clients: ClientsOut


class SiteRotationOut(Out):
    id: str
    state: RotationStatus
    step: str
    gates_waiting_for: list[str]
    pending_decision: PendingDecisionOut | None


class CampaignSiteViewOut(CampaignSiteOut):
    campaign_id: str
    wave: int
    rotation: SiteRotationOut | None
    events: list[CampaignEventOut]


class SiteUnavailableOut(Out):
    site: str
    rotation_id: str | None
    note: str


class CampaignAtRiskOut(Out):
    """Every at-risk client of the campaign's rotations (format=json), streamed."""

    campaign_id: str
    clients: list[dict[str, Any]] = Field(description="One row per client: the CSV's columns")
    unavailable: list[SiteUnavailableOut] = Field(description="Sites whose list could not be read")
