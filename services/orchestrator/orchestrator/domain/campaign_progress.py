"""What a campaign's progress view sums up: clients over every rotation, and when it may end."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from orchestrator.domain.campaign import ACTIVE_SITE, ENDED_SITE, CampaignState


def clients(state: CampaignState, sites: list[str] | None = None) -> dict[str, int]:
    """Clients summed over the campaign's rotations (or the sites named): each rotation's
    latest reading; at risk only where a rotation still waits before its swap."""
    chosen = [state.sites[s] for s in sites] if sites is not None else state.sites.values()
    total = {"total": 0, "reached": 0, "pending": 0, "at_risk": 0, "orphaned_outside_risk": 0,
             "sites_reporting": 0}  # fmt: skip
    for site in chosen:
        total["orphaned_outside_risk"] += site.orphaned_outside_risk
        if site.clients is None:
            continue
        total["sites_reporting"] += 1
        for key in ("total", "reached", "pending"):
            total[key] += int(site.clients[key])
        if site.status in ACTIVE_SITE:
            total["at_risk"] += int(site.clients["at_risk"])
    return total


def forecast_end(state: CampaignState, now: datetime) -> datetime | None:
    """When the last site should end, at the pace of the rotations completed so far.

    Sites left run `max_concurrent` at a time and one per farm at a time; each takes the mean
    time of the completed ones. Window waits and decisions still to come are not foreseen."""
    if state.terminal:
        return None
    took = [
        s.ended_at - s.started_at
        for s in state.sites.values()
        if s.status == "completed" and s.started_at and s.ended_at
    ]
    if not took:
        return None
    mean = sum(took, timedelta()) / len(took)
    left = [s for s in state.sites.values() if s.status not in ENDED_SITE]
    if not left:
        return now
    per_farm: dict[str, int] = {}
    for site in left:
        per_farm[site.farm] = per_farm.get(site.farm, 0) + 1
    lanes = min(state.max_concurrent, len(per_farm))
    rounds = max(math.ceil(len(left) / lanes), max(per_farm.values()))
    return now + rounds * mean
