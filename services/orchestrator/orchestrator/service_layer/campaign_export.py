"""Every at-risk client across a campaign, site after site, from the client-monitor's lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from orchestrator.adapters.clients import ClientMonitorClient, UpstreamUnavailableError
from orchestrator.domain.campaign import CampaignState
from orchestrator.service_layer import rotations
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.errors import NotFoundError

AT_RISK_COLUMNS = [
    "site", "rotation_id", "site_status", "swapped", "uniqueId", "computerName",
    "groupFullPathName", "onlineStatus", "lastUpdateTimeUtc", "daysOffline", "note",
]  # fmt: skip


async def at_risk_rows(deps: Deps, state: CampaignState) -> AsyncIterator[dict[str, Any]]:
    """One row per client at risk at a site's step-3 watch (the clients a swap cuts off), in
    plan order; a site whose list cannot be read gets one row with a note instead.

    One site's list is held at a time (a site has up to tens of thousands of clients); the
    campaign's whole export is never in memory."""
    monitor = ClientMonitorClient(deps.client_monitor)
    for name in [s for wave in state.waves for s in wave]:
        site = state.sites[name]
        if site.rotation_id is None:
            continue
        try:
            rotation = await rotations.get_rotation(deps, site.rotation_id)
        except NotFoundError:
            continue
        wait = rotation.current_wait("await_disable_propagation")
        if wait is None:
            continue
        base = {
            "site": name, "rotation_id": site.rotation_id, "site_status": site.status,
            "swapped": any(s.status == "updated" for s in rotation.servers),
        }  # fmt: skip
        try:
            clients = await monitor.at_risk(wait.watch_id)
        except UpstreamUnavailableError as exc:
            yield {**base, "note": f"at-risk list unavailable: {exc}"}
            continue
        for client in clients:
            yield {**base, **{k: client.get(k) for k in AT_RISK_COLUMNS[4:-1]}}
