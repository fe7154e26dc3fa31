"""A campaign: a saga of rotation sagas over many sites, in waves, under a cap and a budget.

Pure decisions on the campaign's state; the service layer loads it, applies them, saves it with
a version check and only then starts or cancels rotations (through the rotations' own path)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.campaign_plan import check_waves
from orchestrator.domain.orphans import accepted_risk, orphaned_outside_risk, site_clients
from orchestrator.domain.state import MaintenanceWindow, SagaState
from orchestrator.domain.window import is_open, next_opening

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
    # The rotation's latest reading of its fleet (campaign_progress.site_clients).
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


def note_rotations(state: CampaignState, seen: dict[str, SagaState], now: datetime) -> None:
    """Record what the running rotations did to their clients (`seen`: rotation id -> state)."""
    for site in state.active():
        rotation = seen.get(site.rotation_id or "")
        if rotation is None:
            continue
        restored = {p.name for p in rotation.restored_partners}
        left = sorted(set(rotation.broken_partners) - restored)
        if left != site.partners_left_broken:
            site.partners_left_broken = left
        reading = site_clients(rotation)
        if reading is not None and reading != site.clients:
            site.clients = reading
        orphaned = orphaned_outside_risk(rotation)
        if orphaned > site.orphaned_outside_risk:
            site.orphaned_outside_risk = orphaned
            state.record(now, "ClientsOrphaned", site=site.site, rotation_id=site.rotation_id,
                         clients=orphaned, accepted=accepted_risk(rotation))  # fmt: skip


def observe(state: CampaignState, ended: Mapping[str, str], now: datetime) -> None:
    """Record the rotations that ended (`ended`: rotation id -> its terminal status)."""
    for site in state.active():
        outcome = ended.get(site.rotation_id or "")
        if outcome is None:
            continue
        # A rotation the campaign cancelled was not a failure of the rotation.
        cancelled = site.cancel_sent or state.status == "cancelling"
        site.status = "cancelled" if cancelled and outcome == "compensated" else outcome  # type: ignore[assignment]
        site.ended_at = now
        state.record(now, "SiteEnded", site=site.site, rotation_id=site.rotation_id,
                     outcome=site.status)  # fmt: skip
    state.updated_at = now


def progress(state: CampaignState, now: datetime) -> list[str]:
    """Halt, move to the next wave, finish; returns the sites to start now (marked starting)."""
    if state.status == "cancelling":
        for site in state.sites.values():
            if site.status == "pending":
                site.status = "skipped"
        if not state.active():
            state.status = "aborted" if _aborted(state) else "cancelled"
            state.record(now, "CampaignEnded", status=state.status)
        return []
    if state.terminal:
        return []
    _hold_farms(state, now)
    orphaning = [s for s in state.sites.values() if s.orphaned_outside_risk > s.orphans_tolerated]
    if state.status == "running" and orphaning:
        state.status = "halted"
        named = ", ".join(f"{s.site} ({s.orphaned_outside_risk})" for s in orphaning)
        state.decision = WaitingDecision(
            kind="orphaned_clients", wave=state.current_wave, since=now,
            reason=f"clients were cut off beyond the accepted risk at {named}: reconnect them "
            "(SylinkDrop / Communication Update Package), then continue or abort",
        )  # fmt: skip
        state.record(now, "CampaignHalted", orphaned={s.site: s.orphaned_outside_risk
                                                      for s in orphaning})  # fmt: skip
        return []
    if state.status == "running" and state.failures() > state.tolerated_failures:
        state.status = "halted"
        state.decision = WaitingDecision(
            kind="failure_budget", wave=state.current_wave, since=now,
            reason=f"{state.failures()} rotation(s) ended compensated or failed; the budget "
            f"allows {state.tolerated_failures}: continue or abort",
        )  # fmt: skip
        state.record(now, "CampaignHalted", failures=state.failures())
        return []
    if state.status != "running":
        return []
    wave = [state.sites[s] for s in state.waves[state.current_wave]]
    if all(s.status in ENDED_SITE for s in wave):
        following = state.current_wave + 1
        if following == len(state.waves):
            state.status = "completed"
            state.record(now, "CampaignEnded", status="completed", failures=state.failures())
            return []
        if state.approve_each_wave and following not in state.approved_waves:
            state.status = "awaiting_approval"
            state.decision = WaitingDecision(
                kind="wave_approval", wave=following, since=now,
                reason=f"wave {following + 1} of {len(state.waves)} waits for an approver",
            )  # fmt: skip
            state.record(now, "WaveAwaitsApproval", wave=following)
            return []
        state.current_wave = following
        state.record(now, "WaveStarted", wave=following)
        wave = [state.sites[s] for s in state.waves[following]]
    window = state.wave_window(state.current_wave)
    if window is not None and not is_open(window, now):
        opens = next_opening(window, now)
        if state.wave_opens_at != opens:
            state.wave_opens_at = opens
            state.record(now, "WaveAwaitsWindow", wave=state.current_wave,
                         opens_at=opens.isoformat())  # fmt: skip
        return []
    state.wave_opens_at = None
    return _starts(state, wave, now)


def _hold_farms(state: CampaignState, now: datetime) -> None:
    """A rotation that ended with partnerships still broken left its site mid-procedure: a
    partner rotated now would re-add it (overwriting its database) at its own step 7. The
    farm's remaining sites are skipped, for a person to finish that site first."""
    for ended in state.sites.values():
        if ended.status not in ENDED_SITE or not ended.partners_left_broken:
            continue
        skipped = [
            s for s in state.sites.values() if s.farm == ended.farm and s.status == "pending"
        ]
        for site in skipped:
            site.status = "skipped"
            site.note = (
                f"farm held: the rotation of {ended.site} ended {ended.status} with replication "
                f"to {', '.join(ended.partners_left_broken)} still broken; restore it, then "
                "rotate this site in a new campaign"
            )
        if skipped:
            state.record(now, "FarmHeld", site=ended.site, farm=ended.farm,
                         partners=ended.partners_left_broken,
                         skipped=[s.site for s in skipped])  # fmt: skip


def _starts(state: CampaignState, wave: Iterable[CampaignSite], now: datetime) -> list[str]:
    active = state.active()
    # A farm rotates in its order: one waiting for its window holds the farm's later sites.
    busy_farms = {s.farm for s in active}
    room = state.max_concurrent - len(active)
    chosen: list[str] = []
    for site in wave:
        if room <= 0:
            break
        if site.status != "pending" or site.farm in busy_farms:
            continue
        if not _window_open(state, site, now):
            busy_farms.add(site.farm)
            continue
        site.status = "starting"
        busy_farms.add(site.farm)
        room -= 1
        chosen.append(site.site)
        if site.note is None:  # a retry after a deferral is not news (it happens every tick)
            state.record(now, "SiteStarting", site=site.site, farm=site.farm)
    return chosen


def _window_open(state: CampaignState, site: CampaignSite, now: datetime) -> bool:
    """A site waits for its own window; the wait is in its row, so it outlives a restart."""
    if site.window is None or is_open(site.window, now):
        if site.opens_at is not None:
            site.opens_at = None
            site.note = None
        return True
    opens = next_opening(site.window, now)
    if site.opens_at != opens:
        site.opens_at = opens
        site.note = f"waiting for its maintenance window (opens {opens.isoformat()})"
        state.record(now, "SiteAwaitsWindow", site=site.site, opens_at=opens.isoformat())
    return False


def rotation_options(state: CampaignState, site: str) -> dict[str, Any]:
    """The rotation's options: the campaign's, its swap held to the site's (or wave's) window
    unless the campaign's options name a window of their own."""
    options = dict(state.options)
    entry = state.sites[site]
    window = entry.window or state.wave_window(entry.wave)
    if options.get("maintenance_window") is None and window is not None:
        options["maintenance_window"] = window.model_dump()
    return options


def _aborted(state: CampaignState) -> bool:
    return any(e["type"] == "CampaignAborted" for e in state.events)


def started(state: CampaignState, site: str, rotation_id: str, now: datetime) -> None:
    entry = state.sites[site]
    if entry.status == "starting":
        entry.status = "running"
        entry.rotation_id = rotation_id
        entry.started_at = now
        entry.note = None
        state.record(now, "SiteStarted", site=site, rotation_id=rotation_id)
    state.updated_at = now


def start_deferred(state: CampaignState, site: str, note: str, now: datetime) -> None:
    """The site cannot start now (a rotation outside the campaign holds it): try again later."""
    entry = state.sites[site]
    if entry.status == "starting":
        entry.status = "pending" if state.status != "cancelling" else "skipped"
        if entry.note != note:
            state.record(now, "SiteDeferred", site=site, note=note)
        entry.note = note
    state.updated_at = now


def start_refused(state: CampaignState, site: str, note: str, now: datetime) -> None:
    """The rotation was refused (bad window, site gone...): a failure for the budget."""
    entry = state.sites[site]
    if entry.status == "starting":
        entry.status = "failed"
        entry.note = note
        state.record(now, "SiteEnded", site=site, outcome="failed", note=note)
    state.updated_at = now
