"""A site's client fleet, held in columns so a million clients fit in memory and tick cheaply.

A tick processes, in one vectorised pass, every client whose next check-in fell between the
last tick and now. That is exact because the state that decides a check-in (group policy,
served certificates, service states) only changes at events, and the world ticks the fleet
up to the event's time before applying any event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sepm_twin.groups import Group
from sepm_twin.trust import CertificateBits

PUSH_NOTIFY_MS = 60_000  # push clients fetch a change within 0–60 s
DAY_MS = 86_400_000

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FleetGroup:
    """The fleet's view of one group with clients: how many, and how they behave."""

    group: Group
    clients: int
    offline_fraction: float
    offline_days: float
    # The group whose policy the clients follow (the group itself unless it inherits).
    policy: Group | None = None
    offline_since_days: float = 0.0
    # Agent version -> fraction of the clients; the rest run the site's version.
    agent_versions: tuple[tuple[str, float], ...] = ()

    @property
    def policy_group(self) -> Group:
        return self.policy or self.group


class Fleet:
    """Client state of one site. Indices are stable; uniqueIds and names derive from them."""

    def __init__(
        self,
        *,
        groups: list[FleetGroup],
        server_count: int,
        start_ms: int,
        trusted_mask: int,
        rng: np.random.Generator,
        bits: CertificateBits | None = None,
    ) -> None:
        self._rng = rng
        # This site's certificates: its clients only ever meet its own servers.
        self.bits = bits if bits is not None else CertificateBits()
        self.group_ids = [fg.group.id for fg in groups]
        self.group_index = {gid: i for i, gid in enumerate(self.group_ids)}
        n = sum(fg.clients for fg in groups)
        self.size = n
        max_locations = max((len(fg.policy_group.locations) for fg in groups), default=1)
        # Index 0 is the site's own version; other entries come from the scenario.
        self.agent_versions: list[str] = [""]
        self.agent = np.zeros(n, dtype=np.int16)
        self.offline_since = np.zeros(n, dtype=np.int64)

        self.group = np.repeat(
            np.arange(len(groups), dtype=np.int32), [fg.clients for fg in groups]
        )
        self.location = np.zeros(n, dtype=np.int8)
        self.offline_until = np.zeros(n, dtype=np.int64)
        offset = 0
        for fg in groups:
            part = slice(offset, offset + fg.clients)
            self.location[part] = rng.integers(0, len(fg.policy_group.locations), fg.clients)
            away = round(fg.offline_fraction * fg.clients)
            if away and (fg.offline_days > 0 or fg.offline_since_days > 0):
                chosen = offset + rng.choice(fg.clients, size=away, replace=False)
                self.offline_until[chosen] = start_ms + int(fg.offline_days * DAY_MS)
                if fg.offline_since_days > 0:
                    self.offline_since[chosen] = start_ms - int(fg.offline_since_days * DAY_MS)
            taken = 0
            for version, fraction in fg.agent_versions:
                count = min(round(fraction * fg.clients), fg.clients - taken)
                if version not in self.agent_versions:
                    self.agent_versions.append(version)
                self.agent[offset + taken : offset + taken + count] = self.agent_versions.index(
                    version
                )
                taken += count
            offset += fg.clients
        self.server = (np.arange(n) % max(server_count, 1)).astype(np.int8)
        self.members = [np.flatnonzero(self.group == gi) for gi in range(len(groups))]

        # Group policy as the clients would receive it now, one row per group.
        self.g_time = np.zeros(len(groups), dtype=np.int64)
        self.g_secure = np.zeros((len(groups), max_locations), dtype=bool)
        self.g_push = np.zeros((len(groups), max_locations), dtype=bool)
        self.g_hb_ms = np.full((len(groups), max_locations), 300_000, dtype=np.int64)
        for gi, fg in enumerate(groups):
            self.refresh_group(gi, fg.policy_group)

        # Every client starts converged on its group's policy and trusting its site's certs.
        g, loc = self.group, self.location
        self.applied_time = self.g_time[g].copy()
        self.applied_secure = self.g_secure[g, loc].copy()
        self.applied_push = self.g_push[g, loc].copy()
        self.applied_hb_ms = self.g_hb_ms[g, loc].copy()
        self.trusted = np.full(n, trusted_mask, dtype=np.uint64)
        self.orphaned = np.zeros(n, dtype=bool)
        self.orphaned_at = np.zeros(n, dtype=np.int64)
        # Clients that went offline before the start last checked in then, and hold the policy
        # they had at that moment: an older one if the group changed since.
        gone = self.offline_since > 0
        self.applied_time[gone] = np.minimum(self.applied_time[gone], self.offline_since[gone])
        # Each record last changed when its client took the policy it has, before the start.
        self.last_update = self.applied_time.copy()
        self.last_update[gone] = self.offline_since[gone]
        jitter = (rng.random(n) * self.applied_hb_ms).astype(np.int64)
        self.next_checkin = np.maximum(self.offline_until, start_ms) + jitter
        self.max_offline_until = int(self.offline_until.max()) if n else 0

        # The certificates of the site's management server list as SEPM records them; a
        # client pins them when it takes a verifying policy (or a Communication Update Package).
        self.msl_mask = np.uint64(trusted_mask)
        self.s_bit = np.zeros(max(server_count, 1), dtype=np.uint64)
        self.s_up = np.ones(max(server_count, 1), dtype=bool)
        self.now_ms = start_ms
        self.check_ins = 0

    # -- group policy -------------------------------------------------------------------
    def refresh_group(self, gi: int, group: Group) -> None:
        """Copy a group's current policy into the row its clients read at check-in."""
        self.g_time[gi] = group.policy_time_ms
        for li, loc in enumerate(group.locations):
            self.g_secure[gi, li] = loc.secure
            self.g_push[gi, li] = loc.push
            self.g_hb_ms[gi, li] = loc.heartbeat_s * 1000

    def notify_push(self, gi: int, at_ms: int) -> None:
        """Push clients of the group that are connected fetch the change within 0–60 s."""
        m = self.members[gi]
        self._reconnect(m[self.applied_push[m]], at_ms)

    def notify_server_restart(self, si: int, at_ms: int) -> None:
        """Push clients drop their connection on a restart and reconnect within 0–60 s."""
        m = np.flatnonzero((self.server == si) & self.applied_push)
        self._reconnect(m, at_ms)

    def _reconnect(self, idx: IntArray, at_ms: int) -> None:
        idx = idx[(self.offline_until[idx] <= at_ms) & ~self.orphaned[idx]]
        soon = at_ms + (self._rng.random(idx.size) * PUSH_NOTIFY_MS).astype(np.int64)
        self.next_checkin[idx] = np.minimum(self.next_checkin[idx], soon)

    # -- time ---------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        """Run every check-in due up to now_ms."""
        t0 = self.now_ms
        if now_ms <= t0:
            return
        if t0 < self.max_offline_until:
            back = (self.offline_until > t0) & (self.offline_until <= now_ms)
            self.last_update[back] = self.offline_until[back]
        idx = np.flatnonzero((self.next_checkin <= now_ms) & ~self.orphaned)
        if idx.size:
            self._check_in(idx, now_ms)
        self.now_ms = now_ms

    def _check_in(self, idx: IntArray, now_ms: int) -> None:
        at = self.next_checkin[idx]
        srv = self.server[idx]
        up = self.s_up[srv]
        bit = self.s_bit[srv]
        trusts = (self.trusted[idx] & bit) != 0
        lost = up & self.applied_secure[idx] & ~trusts
        ok = up & ~lost
        self.check_ins += int(np.count_nonzero(up))

        gone = idx[lost]
        self.orphaned[gone] = True
        self.orphaned_at[gone] = at[lost]
        self.last_update[gone] = at[lost]

        oi, at_ok = idx[ok], at[ok]
        g, loc = self.group[oi], self.location[oi]
        new_time = self.g_time[g]
        new_secure = self.g_secure[g, loc]
        changed = self.applied_time[oi] != new_time
        ci = oi[changed]
        self.applied_time[ci] = new_time[changed]
        self.applied_secure[ci] = new_secure[changed]
        self.applied_push[ci] = self.g_push[g, loc][changed]
        self.applied_hb_ms[ci] = self.g_hb_ms[g, loc][changed]
        self.last_update[ci] = at_ok[changed]
        # A new verifying policy comes with the management server list, whose recorded
        # certificates the client pins, whatever its server presents.
        self.trusted[ci[new_secure[changed]]] = self.msl_mask

        # Several heartbeats may fall in one tick; state was constant, so one pass is enough.
        hb = self.applied_hb_ms[idx]
        self.next_checkin[idx] = at + hb * ((now_ms - at) // hb + 1)

    # -- views --------------------------------------------------------------------------
    def online(self, idx: IntArray | slice) -> npt.NDArray[np.bool_]:
        return (self.offline_until[idx] <= self.now_ms) & ~self.orphaned[idx]

    def apply_communication_update_package(self, i: int, at_ms: int) -> None:
        """A CUP carries the management server list: the client pins it and talks again."""
        self.orphaned[i] = False
        self.trusted[i] = self.msl_mask
        self.last_update[i] = at_ms
        self.next_checkin[i] = max(at_ms, int(self.offline_until[i])) + int(
            self._rng.random() * PUSH_NOTIFY_MS
        )
