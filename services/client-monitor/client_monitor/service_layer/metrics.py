"""The client-monitor's part of /metrics: where each open watch stands, per site, from the
counts its last scan saved (no client list is read at scrape time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from certrotate_shared import metrics
from client_monitor.adapters.orm import watches

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime

_DOC = (
    "Clients of the open propagation watches by site: reached (have the policy), pending (not "
    "yet), at_risk (would be cut off if the certificate were swapped now)"
)


async def read_gauges(runtime: ServiceRuntime, gauges: metrics.Gauges) -> None:
    """Add reached / pending / at-risk clients per site over its open watches."""
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(watches.c.site, watches.c.counts).where(watches.c.status == "open")
            )
        ).all()
    by_site: dict[str, dict[str, int]] = {}
    for site, counts in rows:
        totals = by_site.setdefault(site, {"reached": 0, "pending": 0, "at_risk": 0})
        if not counts:
            continue  # opened, not scanned yet: the site shows, with nothing counted
        totals["reached"] += int(counts.get("reached", 0))
        totals["pending"] += int(counts.get("pending_online", 0)) + int(
            counts.get("pending_offline", 0)
        )
        totals["at_risk"] += int(counts.get("orphan_risk", 0))
    for site, totals in sorted(by_site.items()):
        for status, value in totals.items():
            gauges.add("certrotate_propagation_clients", _DOC, value, site=site, status=status)
    gauges.add("certrotate_propagation_watches_open", "Open propagation watches", len(rows))
