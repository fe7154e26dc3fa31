"""Every at-risk client across a campaign, site after site, from the client-monitor's lists."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from orchestrator.adapters.clients import ClientMonitorClient, UpstreamUnavailableError
from orchestrator.domain.campaign import CampaignState
from orchestrator.service_layer import rotation_actions
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import NotFoundError

AT_RISK_COLUMNS = [
    "site", "rotation_id", "site_status", "swapped", "uniqueId", "computerName",
    "groupFullPathName", "onlineStatus", "lastUpdateTimeUtc", "daysOffline", "note",
]  # fmt: skip


async def at_risk_rows(
    state: CampaignState, *, db: Database, client_monitor: ClientMonitorClient
) -> AsyncIterator[dict[str, Any]]:
    """One row per client at risk at a site's step-3 watch (the clients a swap cuts off), in
    plan order; a site whose list cannot be read gets one row with a note instead.

    Each site's list is read as JSON lines while it streams from the client-monitor: no list,
    and never the campaign's whole export, is held in memory. A list that breaks off midway
    ends the export there (the response is already under way; the client sees it truncated)."""
    for name in [s for wave in state.waves for s in wave]:
        site = state.sites[name]
        if site.rotation_id is None:
            continue
        try:
            rotation = await rotation_actions.get_rotation(site.rotation_id, db=db)
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
            stream = await client_monitor.clients(
                wait.watch_id, status="at_risk", fmt="jsonl", cursor=None, limit=None
            )
        except UpstreamUnavailableError as exc:
            yield {**base, "note": f"at-risk list unavailable: {exc}"}
            continue
        try:
            async for client in _json_lines(stream.body):
                yield {**base, **{k: client.get(k) for k in AT_RISK_COLUMNS[4:-1]}}
        finally:
            await stream.close()


async def _json_lines(body: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The client-monitor's JSON-lines export, one client at a time as the bytes arrive."""
    pending = b""
    async for chunk in body:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)
