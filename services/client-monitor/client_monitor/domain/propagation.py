"""How far a policy has reached the fleet, and what that means for the watch.

Definitions (docs/design.md, "SEPM facts"; the gates before steps 4 and 7):
- reached: the client's serial is its group's target or a later serial of the same group;
- pending: every watched client that has not reached, online or offline;
- stale: pending and not seen within the stale horizon (offline for longer): listed, not
  waited on;
- straggler: pending and seen within the horizon: what the threshold waits for;
- at risk (orphan risk): every pending client, since each still verifies the old certificate.
The threshold is met when reached / (clients seen within the horizon) >= threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from client_monitor.domain.clients import DAY_MS, ClientTable

BUCKETS = ("0-1", "1-7", "7-30", "30+")
_BUCKET_EDGES_DAYS = (1, 7, 30)


class ClientStatus(StrEnum):
    AT_RISK = "at_risk"
    STRAGGLER = "straggler"
    PENDING = "pending"
    STALE = "stale"


@dataclass(frozen=True)
class Tally:
    total: int
    reached: int
    pending_online: int
    pending_offline: int
    pending_offline_by_days: dict[str, int]
    stale: int
    # Clients seen within the stale horizon, and how many of them have reached.
    seen: int
    seen_reached: int

    @property
    def pending(self) -> int:
        return self.pending_online + self.pending_offline

    @property
    def orphan_risk(self) -> int:
        return self.pending

    @property
    def percent(self) -> float:
        """Share of the clients seen within the horizon that have reached, in percent."""
        return 100.0 if self.seen == 0 else round(100.0 * self.seen_reached / self.seen, 2)

    def needed(self, threshold: float) -> int:
        """How many clients seen within the horizon must reach for the threshold."""
        return math.ceil(threshold * self.seen - 1e-9)

    def threshold_met(self, threshold: float) -> bool:
        return self.seen_reached >= self.needed(threshold)


@dataclass(frozen=True)
class Masks:
    """Boolean columns over the table's rows for one moment, and the offline rows' days."""

    watched: npt.NDArray[np.bool_]
    reached: npt.NDArray[np.bool_]
    pending: npt.NDArray[np.bool_]
    seen: npt.NDArray[np.bool_]
    offline_rows: npt.NDArray[np.intp]
    offline_days: npt.NDArray[np.float64]  # days since each offline row's lastUpdateTime

    def of(self, status: ClientStatus) -> npt.NDArray[np.bool_]:
        if status in (ClientStatus.AT_RISK, ClientStatus.PENDING):
            return self.pending
        if status is ClientStatus.STALE:
            return self.pending & ~self.seen
        return self.pending & self.seen


def masks(table: ClientTable, *, now_ms: int, stale_horizon_days: float) -> Masks:
    n = table.size
    watched = table.watched()
    reached = table.reached[:n] & watched
    online = table.online[:n]
    # Days offline of the offline rows only: an online client is seen now. A float column
    # over every row was 8 MB at 1M clients, held with its temporaries at the end of each scan.
    offline = np.flatnonzero(~online)
    days = np.subtract(now_ms, table.last_update[offline], dtype=np.float64)
    days /= DAY_MS
    np.maximum(days, 0.0, out=days)
    seen = online.copy()
    seen[offline] = days <= stale_horizon_days
    seen &= watched
    return Masks(watched, reached, watched & ~reached, seen, offline, days)


def tally(table: ClientTable, *, now_ms: int, stale_horizon_days: float) -> Tally:
    """Count the watch's clients at `now_ms` (SEPM time, epoch ms)."""
    m = masks(table, now_ms=now_ms, stale_horizon_days=stale_horizon_days)
    pending_offline = m.pending[m.offline_rows]
    bucket = np.searchsorted(_BUCKET_EDGES_DAYS, m.offline_days[pending_offline], side="right")
    by_days = np.bincount(bucket, minlength=len(BUCKETS))
    offline_pending = int(pending_offline.sum())
    return Tally(
        total=int(m.watched.sum()),
        reached=int(m.reached.sum()),
        pending_online=int(m.pending.sum()) - offline_pending,
        pending_offline=offline_pending,
        pending_offline_by_days={b: int(c) for b, c in zip(BUCKETS, by_days, strict=True)},
        stale=int((m.pending & ~m.seen).sum()),
        seen=int(m.seen.sum()),
        seen_reached=int((m.seen & m.reached).sum()),
    )


class Verdict(StrEnum):
    WAITING = "waiting"
    PROPAGATED = "propagated"
    STALLED = "stalled"


def judge(tally: Tally | None, *, threshold: float, deadline: datetime, now: datetime) -> Verdict:
    """Threshold met wins over a deadline passed in the same scan; no tally yet: only the deadline."""
    if tally is not None and tally.threshold_met(threshold):
        return Verdict.PROPAGATED
    if now >= deadline:
        return Verdict.STALLED
    return Verdict.WAITING


def stall_reason(tally: Tally | None, *, threshold: float, deadline: datetime) -> str:
    """A sentence an operator can act on."""
    if tally is None:
        return f"deadline {deadline.isoformat()} passed before a scan of the fleet completed"
    waiting = tally.seen - tally.seen_reached
    return (
        f"deadline {deadline.isoformat()} passed with {tally.seen_reached} of {tally.seen} "
        f"clients seen within the horizon at the target ({tally.percent}%, threshold "
        f"{threshold * 100:g}%): {waiting} stragglers ({tally.pending_online} pending online, "
        f"{tally.pending_offline} offline), {tally.stale} stale"
    )
