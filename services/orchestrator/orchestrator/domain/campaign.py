"""A campaign: a saga of rotation sagas over many sites, in waves, under a cap and a budget.

Pure decisions on the campaign's state; the service layer loads it, applies them, saves it with
a version check and only then starts or cancels rotations (through the rotations' own path)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.campaign_plan import check_waves
from orchestrator.domain.state import MaintenanceWindow

CampaignStatus = Literal[
    "running", "paused", "awaiting_approval", "halted", "cancelling", "cancelled", "aborted",
    "completed",
]  # fmt: skip


SiteStatus = Literal[
    "pending", "starting", "running", "completed", "compensated", "failed", "cancelled",
    "skipped",
]  # fmt: skip


TERMINAL: frozenset[str] = frozenset({"cancelled", "aborted", "completed"})


ENDED_SITE: frozenset[str] = frozenset(
    {"completed", "compensated", "failed", "cancelled", "skipped"}
)


FAILED_SITE: frozenset[str] = frozenset({"compensated", "failed"})


ACTIVE_SITE: frozenset[str] = frozenset({"starting", "running"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CampaignSite(_Model):
    site: str
    wave: int
    # The replication farm's name (its first site): at most one rotation per farm at a time.
    farm: str
    status: SiteStatus = "pending"
    rotation_id: str | None = None
    # The pre-flighted bundle (public parts only: reference, fingerprint, certificate PEM).
    bundle: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None
    cancel_sent: bool = False
    cancel_sent_at: datetime | None = None
    cancel_refused: bool = False
    # Clients the rotation cut off beyond the risk an approver accepted, and how many of them
    # an approver has since chosen to continue past.
    orphaned_outside_risk: int = 0
    orphans_tolerated: int = 0
    # The site's own maintenance window (its time zone): the rotation starts, and swaps, in it.
    window: MaintenanceWindow | None = None
    opens_at: datetime | None = None  # while the site waits for its window
    # Partnerships the rotation broke (step 1) and has not re-added (step 7 or compensation).
    partners_left_broken: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # The rotation's latest reading of its fleet (orphans.site_clients).
    clients: dict[str, Any] | None = None


class WaitingDecision(_Model):
    kind: Literal["failure_budget", "wave_approval", "orphaned_clients"]
    wave: int
    reason: str
    since: datetime


class CampaignState(_Model):
    campaign_id: str
    name: str
    status: CampaignStatus = "running"
    created_by: str
    # The creator's token as the history keeps it; each rotation records it too.
    principal: dict[str, str] | None = None
    created_at: datetime
    updated_at: datetime
    change_id: str | None = None
    waves: list[list[str]]
    max_concurrent: int
    max_failures: int
    approve_each_wave: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
    sites: dict[str, CampaignSite]
    current_wave: int = 0
    approved_waves: list[int] = Field(default_factory=list)
    # Failures an approver chose to continue past ("continue" after a halt raises it).
    tolerated_failures: int
    decision: WaitingDecision | None = None
    # The plan as asked and what each tag named then: a site tagged later is not swept in.
    targets: dict[str, Any] = Field(default_factory=dict)
    # Per wave (by index): no site of the wave starts outside it.
    wave_windows: list[MaintenanceWindow | None] = Field(default_factory=list)
    wave_opens_at: datetime | None = None  # while the current wave waits for its window
    # What the campaign did, in order: starts and ends of rotations, operator actions.
    events: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def failures(self) -> int:
        return sum(1 for s in self.sites.values() if s.status in FAILED_SITE)

    def active(self) -> list[CampaignSite]:
        return [s for s in self.sites.values() if s.status in ACTIVE_SITE]

    def wave_window(self, wave: int) -> MaintenanceWindow | None:
        return self.wave_windows[wave] if wave < len(self.wave_windows) else None

    def record(self, now: datetime, kind: str, **detail: Any) -> None:
        self.events.append({"seq": len(self.events) + 1, "at": now.isoformat(), "type": kind,
                            **detail})  # fmt: skip


def new_campaign(
    *,
    campaign_id: str,
    name: str,
    waves: list[list[str]],
    farms: dict[str, str],
    bundles: dict[str, dict[str, Any]],
    max_concurrent: int,
    max_failures: int,
    approve_each_wave: bool,
    options: dict[str, Any],
    change_id: str | None,
    by: str,
    now: datetime,
    principal: dict[str, str] | None = None,
    targets: dict[str, Any] | None = None,
    site_windows: dict[str, MaintenanceWindow] | None = None,
    wave_windows: list[MaintenanceWindow | None] | None = None,
) -> CampaignState:
    check_waves(waves)
    sites = {
        site: CampaignSite(
            site=site,
            wave=index,
            farm=farms[site],
            bundle=bundles[site],
            window=(site_windows or {}).get(site),
        )
        for index, wave in enumerate(waves)
        for site in wave
    }
    state = CampaignState(
        campaign_id=campaign_id, name=name, created_by=by, principal=principal,
        created_at=now, updated_at=now,
        change_id=change_id, waves=waves, max_concurrent=max_concurrent,
        max_failures=max_failures, approve_each_wave=approve_each_wave, options=options,
        sites=sites, tolerated_failures=max_failures, targets=targets or {},
        wave_windows=wave_windows or [],
    )  # fmt: skip
    state.record(now, "CampaignCreated", by=by, waves=waves)
    if state.targets.get("tags"):
        state.record(now, "TargetsResolved", tags=state.targets["tags"])
    return state


def rotation_options(state: CampaignState, site: str) -> dict[str, Any]:
    """The rotation's options: the campaign's, its swap held to the site's (or wave's) window
    unless the campaign's options name a window of their own."""
    options = dict(state.options)
    entry = state.sites[site]
    window = entry.window or state.wave_window(entry.wave)
    if options.get("maintenance_window") is None and window is not None:
        options["maintenance_window"] = window.model_dump()
    return options
