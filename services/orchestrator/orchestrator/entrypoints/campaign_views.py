"""The campaign as the API shows it: progress, drill-down by wave and site, the at-risk export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from certrotate_shared.spreadsheet import safe_cell
from orchestrator.domain import campaign_progress as progress
from orchestrator.domain.campaign import ENDED_SITE, CampaignState
from orchestrator.domain.state import SagaState
from orchestrator.entrypoints import campaign_models as out
from orchestrator.service_layer.campaign_export import AT_RISK_COLUMNS

_SITE_FIELDS = {
    "site", "status", "rotation_id", "note", "farm", "orphaned_outside_risk", "window",
    "opens_at", "partners_left_broken", "started_at", "ended_at", "clients",
}  # fmt: skip


def campaign_summary(state: CampaignState) -> out.CampaignSummaryOut:
    counts: dict[str, int] = {}
    for site in state.sites.values():
        counts[site.status] = counts.get(site.status, 0) + 1
    return out.CampaignSummaryOut(
        id=state.campaign_id, name=state.name, state=state.status,
        created_by=state.created_by, created_at=state.created_at.isoformat(),
        updated_at=state.updated_at.isoformat(), change_id=state.change_id,
        current_wave=state.current_wave + 1, waves=len(state.waves),
        sites_by_state=counts, failures=state.failures(),
        failure_budget=state.max_failures, tolerated_failures=state.tolerated_failures,
        max_concurrent=state.max_concurrent, approve_each_wave=state.approve_each_wave,
        decision_waiting=state.decision.model_dump() if state.decision else None,
        targets=state.targets,
        wave_opens_at=state.wave_opens_at.isoformat() if state.wave_opens_at else None,
    )  # fmt: skip


def _site_row(
    state: CampaignState, name: str, running: dict[str, SagaState]
) -> out.CampaignSiteOut:
    row = state.sites[name].model_dump(include=_SITE_FIELDS)
    if name in running:
        row["rotation_state"] = running[name].status
    return out.CampaignSiteOut.model_validate(row)


def decisions_waiting(
    state: CampaignState, running: dict[str, SagaState]
) -> list[out.DecisionWaitingOut]:
    """The campaign's decision and each rotation's (a pause for a person, or a gate's approval)."""
    found: list[dict[str, Any]] = []
    if state.decision is not None:
        found.append({"scope": "campaign", **state.decision.model_dump()})
    for site, rotation in sorted(running.items()):
        pending = rotation.pending_decision
        if pending is not None:
            found.append({"scope": "rotation", "site": site, "rotation_id": rotation.saga_id,
                          **pending.model_dump()})  # fmt: skip
        elif "approval" in rotation.gate_waiting_for:
            found.append({"scope": "rotation", "site": site, "rotation_id": rotation.saga_id,
                          "kind": "approval", "reason": "the swap waits for an approver"})  # fmt: skip
    return [out.DecisionWaitingOut.model_validate(d) for d in found]


def campaign_view(
    state: CampaignState,
    rotations: dict[str, SagaState] | None = None,
    now: datetime | None = None,
) -> out.CampaignOut:
    """Sites by wave; for running ones their rotation's state and what it waits for."""
    running = rotations or {}
    waves = [
        out.WaveOut(wave=i + 1, sites=[_site_row(state, s, running) for s in w])
        for i, w in enumerate(state.waves)
    ]
    waiting = [
        out.RotationWaitingOut(site=site, rotation_id=r.saga_id, rotation_state=r.status,
                               waiting_for=r.gate_waiting_for)
        for site, r in sorted(running.items())
        if r.status == "paused" or r.gate_waiting_for
    ]  # fmt: skip
    forecast = progress.forecast_end(state, now or state.updated_at)
    return out.CampaignOut(
        **dict(campaign_summary(state)), plan=waves, rotations_waiting=waiting,
        progress=out.ProgressOut(
            clients=out.ClientsOut.model_validate(progress.clients(state)),
            forecast_end=forecast.isoformat() if forecast else None,
            decisions_waiting=decisions_waiting(state, running),
        ),
        events=[out.CampaignEventOut.model_validate(e) for e in state.events],
    )  # fmt: skip


def wave_view(
    state: CampaignState, wave: int, running: dict[str, SagaState]
) -> out.CampaignWaveOut:
    names = state.waves[wave]
    if all(state.sites[s].status in ENDED_SITE for s in names):
        status: Literal["ended", "running", "waiting"] = "ended"
    elif wave < state.current_wave or (wave == state.current_wave and state.wave_opens_at is None):
        status = "running"
    else:
        status = "waiting"
    window = state.wave_window(wave)
    return out.CampaignWaveOut(
        campaign_id=state.campaign_id, wave=wave + 1, state=status,
        window=window.model_dump() if window else None,
        opens_at=state.wave_opens_at.isoformat()
        if state.wave_opens_at and wave == state.current_wave else None,
        sites=[_site_row(state, s, running) for s in names],
        clients=out.ClientsOut.model_validate(progress.clients(state, names)),
    )  # fmt: skip


def site_view(
    state: CampaignState, name: str, rotation: SagaState | None
) -> out.CampaignSiteViewOut:
    site = state.sites[name]
    return out.CampaignSiteViewOut(
        campaign_id=state.campaign_id, **dict(_site_row(state, name, {})), wave=site.wave + 1,
        rotation=None if rotation is None else out.SiteRotationOut(
            id=rotation.saga_id, state=rotation.status, step=rotation.step,
            gates_waiting_for=rotation.gate_waiting_for,
            pending_decision=rotation.pending_decision.model_dump()
            if rotation.pending_decision else None,
        ),
        events=[out.CampaignEventOut.model_validate(e) for e in state.events
                if e.get("site") == name],
    )  # fmt: skip


async def at_risk_csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=AT_RISK_COLUMNS, lineterminator="\r\n", extrasaction="ignore"
    )
    writer.writeheader()
    async for row in rows:
        writer.writerow({key: safe_cell(value) for key, value in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


async def at_risk_json(rows: AsyncIterator[dict[str, Any]], campaign_id: str) -> AsyncIterator[str]:
    yield json.dumps({"campaign_id": campaign_id})[:-1] + ', "clients": ['
    unavailable: list[dict[str, Any]] = []
    first = True
    async for row in rows:
        if row.get("note"):
            unavailable.append({k: row[k] for k in ("site", "rotation_id", "note")})
            continue
        yield ("" if first else ",") + json.dumps(row)
        first = False
    yield '], "unavailable": ' + json.dumps(unavailable) + "}"
