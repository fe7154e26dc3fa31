"""A site: one database (groups and policy) shared by its management servers, and its clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sepm_twin.access import RateLimit, TokenStore
from sepm_twin.fleet import Fleet
from sepm_twin.groups import Domain, Group, merge_settings, policy_owner
from sepm_twin.servers import ManagementServer


@dataclass
class Site:
    name: str
    id: str
    version: str
    version_full: str
    api_sequence: str
    servers: list[ManagementServer]
    groups: dict[str, Group]  # the site's database, by group id
    domains: dict[str, Domain]  # by id, the default domain first
    fleet: Fleet
    tokens: TokenStore
    rate_limit: RateLimit
    client_prefix: str  # uniqueId = prefix (24 hex) + client index (8 hex)
    number: int
    group_events: int = field(default=0)

    def server(self, name: str) -> ManagementServer | None:
        return next((s for s in self.servers if s.name == name), None)

    @property
    def default_domain(self) -> Domain:
        return next(iter(self.domains.values()))

    def find_domain(self, wanted: str) -> Domain | None:
        """A domain by id, or by name (case-insensitive)."""
        found = self.domains.get(wanted.upper())
        if found is None:
            found = next(
                (d for d in self.domains.values() if d.name.lower() == wanted.lower()), None
            )
        return found

    def group_by_path(self, full_path: str, domain: Domain | None = None) -> Group | None:
        wanted = full_path.lower()
        within = domain or self.default_domain
        return next(
            (
                g
                for g in self.groups.values()
                if g.full_path.lower() == wanted and g.domain.id == within.id
            ),
            None,
        )

    def sorted_groups(self, domain: Domain | None = None) -> list[Group]:
        """The groups of one domain (all domains if None), in full path order."""
        chosen = [g for g in self.groups.values() if domain is None or g.domain.id == domain.id]
        return sorted(chosen, key=lambda g: g.full_path.lower())

    def policy_owner(self, group: Group) -> Group:
        """The group whose policy applies: itself, or the nearest ancestor that does not inherit."""
        return policy_owner(group, self.groups)

    # -- changes to the database ----------------------------------------------------------
    def patch_location(
        self, group: Group, location_id: str, body: Any, at_ms: int
    ) -> dict[str, Any]:
        """Apply a settings PATCH to the policy's owner; its serial changes only if a setting did."""
        group = self.policy_owner(group)
        location = group.location(location_id)
        if location is None:
            raise KeyError(location_id)
        merged = merge_settings(location.settings, body)
        if merged != location.settings:
            location.settings = merged
            group.policy_time_ms = max(at_ms, group.policy_time_ms + 1)
            self._policy_changed(group, at_ms)
        return location.settings

    def touch_policy(self, group: Group, at_ms: int) -> None:
        """A new serial with unchanged settings, as database maintenance or LiveUpdate cause."""
        group = self.policy_owner(group)
        group.policy_time_ms = max(at_ms, group.policy_time_ms + 1)
        self._policy_changed(group, at_ms)

    def differs(self, incoming: Group) -> bool:
        current = self.groups.get(incoming.id)
        return current is None or not _same_policy(current, incoming)

    def put_group(self, incoming: Group, at_ms: int) -> None:
        """Store a replicated copy of a group, as the partner's database had it."""
        if not self.differs(incoming):
            return
        self.groups[incoming.id] = incoming.copy()
        self._policy_changed(self.groups[incoming.id], at_ms)

    def _policy_changed(self, group: Group, at_ms: int) -> None:
        self.group_events += 1
        # Clients of the group and of every group that inherits from it get the change.
        for gi, group_id in enumerate(self.fleet.group_ids):
            member = self.groups.get(group_id)
            if member is not None and self.policy_owner(member).id == group.id:
                self.fleet.refresh_group(gi, group)
                self.fleet.notify_push(gi, at_ms)

    def client_count(self, group_id: str) -> int:
        gi = self.fleet.group_index.get(group_id)
        return 0 if gi is None else int(self.fleet.members[gi].size)

    def parse_unique_id(self, unique_id: str) -> int | None:
        uid = unique_id.upper()
        if len(uid) != 32 or not uid.startswith(self.client_prefix):
            return None
        try:
            index = int(uid[24:], 16)
        except ValueError:
            return None
        return index if index < self.fleet.size else None

    def unique_id(self, index: int) -> str:
        return f"{self.client_prefix}{index:08X}"


def _same_policy(a: Group, b: Group) -> bool:
    return (
        a.policy_time_ms == b.policy_time_ms
        and a.full_path == b.full_path
        and [(loc.id, loc.settings) for loc in a.locations]
        == [(loc.id, loc.settings) for loc in b.locations]
    )
