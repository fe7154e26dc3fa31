"""Replication between partner sites: scheduled and on-demand runs, status codes, re-adding.

Groups and policy settings always replicate. A normal run keeps, per group, the copy with the
latest policy change. Each site keeps its own partner list: deleting the partner on one site
leaves it listed on the other, and a run needs both to list each other. Adding a partner on a
site makes its first run overwrite the partner's database with the site's, as SEPM does; that
database carries the partnership, so the partner lists the site again afterwards. Partners talk HTTPS to each other, so a run
fails to connect when either side's replicating server presents a certificate the partnership
was not set up with: the reason the vendor breaks replication before a certificate change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sepm_twin.faults import FaultBook
from sepm_twin.groups import Group
from sepm_twin.site import Site

SUCCEEDED = "SUCCEEDED"
NEVER_REPLICATED = "NEVER_REPLICATED"
FAILED_CONNECT = "FAILED_CONNECT"
_PHASES = ("CONNECTING", "AUTHENTICATING", "SUBMITTING", "PROCESSING")


@dataclass
class Run:
    started_ms: int
    ends_ms: int
    overwrite_from: str | None


@dataclass
class Partnership:
    sites: tuple[str, str]
    pinned: set[str]  # fingerprints each side accepted when the partnership was made
    listed_by: set[str]  # the sites whose partner list names the other
    next_run_ms: int
    status_code: str = NEVER_REPLICATED
    last_run_ms: int | None = None
    last_success_ms: int | None = None
    run: Run | None = None
    pending_overwrite_from: str | None = None
    failures: list[str] = field(default_factory=list)

    def other(self, site: str) -> str:
        return self.sites[1] if self.sites[0] == site else self.sites[0]

    def status_at(self, now_ms: int) -> str:
        if self.run is None:
            return self.status_code
        span = max(self.run.ends_ms - self.run.started_ms, 1)
        phase = min(int((now_ms - self.run.started_ms) * len(_PHASES) / span), len(_PHASES) - 1)
        return _PHASES[max(phase, 0)]


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class Replication:
    def __init__(
        self,
        *,
        sites: dict[str, Site],
        faults: FaultBook,
        interval_ms: int,
        duration_ms: int,
    ) -> None:
        self._sites = sites
        self._faults = faults
        self.interval_ms = interval_ms
        self.duration_ms = duration_ms
        self.partnerships: dict[tuple[str, str], Partnership] = {}
        # Called with a site and a time just before a run changes that site's database, so
        # the site's clients have checked in up to that moment under the old policy.
        self.before_change: Callable[[Site, int], None] = lambda site, at_ms: None

    def partners_of(self, site: str) -> list[Partnership]:
        """The partnerships the site's own partner list names."""
        return sorted(
            (p for p in self.partnerships.values() if site in p.listed_by),
            key=lambda p: p.other(site),
        )

    def find(self, site: str, partner: str) -> Partnership | None:
        """The partnership, if the site's partner list names the partner."""
        found = self.partnerships.get(_key(site, partner))
        return found if found is not None and site in found.listed_by else None

    def _pins(self, *site_names: str) -> set[str]:
        return {
            srv.manager_facing.fingerprint_sha256
            for name in site_names
            for srv in self._sites[name].servers
        }

    def establish(self, a: str, b: str, now_ms: int) -> Partnership:
        """A partnership that has been replicating since the scenario began."""
        partnership = Partnership(
            sites=_key(a, b),
            pinned=self._pins(a, b),
            listed_by={a, b},
            next_run_ms=now_ms + self.interval_ms,
            status_code=SUCCEEDED,
            last_run_ms=now_ms,
            last_success_ms=now_ms,
        )
        self.partnerships[partnership.sites] = partnership
        self._merge(partnership, now_ms)
        return partnership

    def delete(self, site: str, partner: str) -> bool:
        """Take the partner off this site's list only; the partner's list is its own."""
        partnership = self.find(site, partner)
        if partnership is None:
            return False
        partnership.listed_by.discard(site)
        if partnership.pending_overwrite_from == site:
            partnership.pending_overwrite_from = None
        if not partnership.listed_by:
            del self.partnerships[partnership.sites]
        return True

    def add(self, site: str, partner: str, now_ms: int) -> Partnership:
        """List the partner on this site; the first run overwrites the partner's database."""
        partnership = self.partnerships.get(_key(site, partner))
        if partnership is None:
            partnership = Partnership(
                sites=_key(site, partner),
                pinned=set(),
                listed_by=set(),
                next_run_ms=now_ms + self.interval_ms,
            )
            self.partnerships[partnership.sites] = partnership
        # Set up with the certificates both sides present now, as the wizard's handshake.
        partnership.pinned = self._pins(site, partner)
        partnership.listed_by.add(site)
        partnership.pending_overwrite_from = site
        if partnership.run is not None:
            partnership.run.overwrite_from = site
        self.start_run(partnership, now_ms)
        return partnership

    def start_run(self, partnership: Partnership, now_ms: int) -> None:
        if partnership.run is not None:
            return  # one run at a time; a second request joins the running one
        partnership.run = Run(now_ms, now_ms + self.duration_ms, partnership.pending_overwrite_from)

    def next_event_ms(self) -> int | None:
        """When the next run starts or ends, so the world can advance in event order."""
        times = [p.run.ends_ms if p.run else p.next_run_ms for p in self.partnerships.values()]
        return min(times, default=None)

    def step(self, at_ms: int) -> None:
        """Start the runs due at `at_ms` and finish those that end by then."""
        for partnership in list(self.partnerships.values()):
            if partnership.run is None and at_ms >= partnership.next_run_ms:
                self.start_run(partnership, partnership.next_run_ms)
            run = partnership.run
            if run is not None and at_ms >= run.ends_ms:
                self._finish(partnership, run, run.ends_ms)

    def _finish(self, partnership: Partnership, run: Run, at_ms: int) -> None:
        partnership.run = None
        partnership.last_run_ms = at_ms
        partnership.next_run_ms = at_ms + self.interval_ms
        a, b = partnership.sites
        fault = self._faults.fire(
            ("replication_failure",), {"site": a, "partner": b}
        ) or self._faults.fire(("replication_failure",), {"site": b, "partner": a})
        presented = {
            self._sites[name].servers[0].manager_facing.fingerprint_sha256 for name in (a, b)
        }
        source = run.overwrite_from
        if source is not None and source not in partnership.listed_by:
            source = None  # deleted again before its first run
        if fault is not None:
            partnership.status_code = fault.status_code
            partnership.failures.append(fault.message or "injected replication failure")
        elif source is None and partnership.listed_by != set(partnership.sites):
            partnership.status_code = FAILED_CONNECT
            partnership.failures.append("the partner does not list this site as a partner")
        elif not presented <= partnership.pinned:
            partnership.status_code = FAILED_CONNECT
            partnership.failures.append("partner presented an untrusted certificate")
        else:
            if source is not None:
                self._overwrite(source, partnership.other(source), at_ms)
                # The partner's database is now the source's, partner list included.
                partnership.listed_by = set(partnership.sites)
                partnership.pending_overwrite_from = None
            else:
                self._merge(partnership, at_ms)
            partnership.status_code = SUCCEEDED
            partnership.last_success_ms = at_ms

    def _merge(self, partnership: Partnership, at_ms: int) -> None:
        a, b = (self._sites[name] for name in partnership.sites)
        for group_id in set(a.groups) | set(b.groups):
            ga, gb = a.groups.get(group_id), b.groups.get(group_id)
            newest = max((g for g in (ga, gb) if g is not None), key=lambda g: g.policy_time_ms)
            self._put(a, newest, at_ms)
            self._put(b, newest, at_ms)

    def _overwrite(self, source: str, target: str, at_ms: int) -> None:
        # Groups that exist only in the target are kept: SEPM will not drop a group that
        # still has clients, and the twin's clients never move between groups.
        for group in list(self._sites[source].groups.values()):
            self._put(self._sites[target], group, at_ms)

    def _put(self, site: Site, group: Group, at_ms: int) -> None:
        if site.differs(group):
            self.before_change(site, at_ms)
            site.put_group(group, at_ms)
