"""A rotation's history as the dashboard keeps it between polls: read through the API once,
then only what is new (history rows never change), so a page polled every two seconds does not
re-read a two-week rotation's thousands of entries."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from orchestrator.entrypoints.dashboard.loopback import Api

# History types that carry a propagation reading (client-monitor's counts).
READINGS = ("PropagationProgressed", "PolicyPropagated", "PropagationStalled")
# Re-read this many entries before the last one seen: a transaction that took its id earlier
# may commit later, and must not be skipped.
OVERLAP = 20
RECENT = 15
KEPT_ROTATIONS = 64


@dataclass
class Feed:
    last_seq: int = 0
    seen: set[int] = field(default_factory=set)
    # watch id -> [(observed_at, percent)]
    readings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add(self, entry: dict[str, Any]) -> None:
        seq = int(entry["seq"])
        if seq in self.seen:
            return
        self.seen.add(seq)
        self.last_seq = max(self.last_seq, seq)
        detail = entry.get("detail") or {}
        if entry.get("type") in READINGS and isinstance(detail, dict) and detail.get("watch_id"):
            self.readings.setdefault(detail["watch_id"], []).append(
                (
                    str(detail.get("observed_at") or entry.get("at")),
                    float(detail.get("percent") or 0),
                )
            )
        self.recent = sorted([*self.recent, entry], key=lambda e: int(e["seq"]))[-RECENT:]


class HistoryFeeds:
    """Per rotation, bounded: the least recently viewed rotations are forgotten."""

    def __init__(self) -> None:
        self._feeds: OrderedDict[str, Feed] = OrderedDict()

    async def read(self, api: Api, rotation_id: str) -> Feed:
        """Brings the feed up to date through the API, as the person viewing the page."""
        feed = self._feeds.pop(rotation_id, None) or Feed()
        self._feeds[rotation_id] = feed
        while len(self._feeds) > KEPT_ROTATIONS:
            self._feeds.popitem(last=False)
        async with feed.lock:
            after = max(0, feed.last_seq - OVERLAP)
            while True:
                page = await api.get(f"/v1/rotations/{rotation_id}/events", after=after, limit=1000)
                for entry in page["items"]:
                    feed.add(entry)
                if page.get("next_after") is None:
                    break
                after = page["next_after"]
        return feed


def feeds_of(app: Any) -> HistoryFeeds:
    feeds = getattr(app.state, "dashboard_history", None)
    if feeds is None:
        feeds = app.state.dashboard_history = HistoryFeeds()
    return feeds
