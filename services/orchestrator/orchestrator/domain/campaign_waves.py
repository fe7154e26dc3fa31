"""A campaign's decisions on each tick, pure like the saga's: what its running rotations did
to their clients, which ended, whether to halt, hold a farm, move to the next wave or finish,
and which sites start now (each within its maintenance window)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from orchestrator.domain.campaign import ENDED_SITE, CampaignSite, CampaignState, WaitingDecision
from orchestrator.domain.orphans import accepted_risk, orphaned_outside_risk, site_clients
from orchestrator.domain.state import SagaState
from orchestrator.domain.window import is_open, next_opening


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
