"""Turning a scenario into sites, servers, databases and fleets."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime

import numpy as np

from sepm_twin.access import RateLimit, TokenStore
from sepm_twin.certificates import CertificateAuthority
from sepm_twin.fleet import DAY_MS, Fleet, FleetGroup
from sepm_twin.groups import (
    DEFAULT_DOMAIN,
    Domain,
    Group,
    Location,
    default_settings,
    policy_owner,
    twin_id,
)
from sepm_twin.scenario import GroupSpec, Scenario, SiteSpec
from sepm_twin.servers import ManagementServer
from sepm_twin.site import Site
from sepm_twin.trust import CertificateBits

# What /version reports for a marketing version: SEPM adds a build number.
_KNOWN_BUILDS = {"14.3.9000": "14.3.25029.9000"}
API_SEQUENCE = "240604011"


def full_version(spec: SiteSpec) -> str:
    if spec.version_full:
        return spec.version_full
    if spec.version in _KNOWN_BUILDS:
        return _KNOWN_BUILDS[spec.version]
    parts = spec.version.split(".")
    if len(parts) == 3:
        return f"{parts[0]}.{parts[1]}.5000.{parts[2]}"
    return spec.version


def farms(scenario: Scenario) -> dict[str, str]:
    """Site name -> farm key. Sites that replicate, directly or not, share one group tree."""
    parent = {s.name: s.name for s in scenario.sites}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for site in scenario.sites:
        for partner in site.replication_partners:
            parent[root(partner)] = root(site.name)
    members: dict[str, list[str]] = {}
    for site in scenario.sites:
        members.setdefault(root(site.name), []).append(site.name)
    return {name: "+".join(sorted(members[root(name)])) for name in parent}


def group_id(seed: int, farm: str, domain: str, path: str) -> str:
    # The default domain's ids leave the domain out, so they stay what they always were.
    if domain.lower() == DEFAULT_DOMAIN.lower():
        return twin_id(str(seed), farm, path.lower())
    return twin_id(str(seed), farm, domain.lower(), path.lower())


def _domain(name: str, *, farm: str, seed: int, start_ms: int) -> Domain:
    domain_id = twin_id(str(seed), farm, "domain", name.lower())
    return Domain(id=domain_id, name=name, created_ms=start_ms - 400 * DAY_MS)


def _group(spec: GroupSpec, *, domain: Domain, farm: str, seed: int, start_ms: int) -> Group:
    gid = group_id(seed, farm, domain.name, spec.name)
    parent = spec.name.rsplit("\\", 1)[0] if "\\" in spec.name else None
    # The last policy change happened some hours before the scenario starts; derived from
    # the id so partner sites that both define a group agree on its serial.
    policy_time = start_ms - DAY_MS + int(gid[:6], 16) % DAY_MS
    settings = default_settings(
        secure=spec.secure_communications, push=spec.mode == "push", heartbeat_s=spec.heartbeat_s
    )
    return Group(
        id=gid,
        full_path=spec.name,
        policy_time_ms=policy_time,
        domain=domain,
        locations=[]
        if spec.inherits
        else [
            Location(twin_id(gid, name), name, copy.deepcopy(settings)) for name in spec.locations
        ],
        inheritance=spec.inherits,
        parent_id=None if parent is None else group_id(seed, farm, domain.name, parent),
    )


def _with_ancestors(specs: list[GroupSpec]) -> list[GroupSpec]:
    """Every group's parents exist in SEPM ("My Company" at least), with no clients.

    The default domain always exists, with its My Company root, even if no group names it.
    """
    specs = [GroupSpec(name="My Company"), *specs]
    paths: set[tuple[str, str]] = set()
    out: list[GroupSpec] = []
    for spec in specs:
        parts = spec.name.split("\\")
        for depth in range(1, len(parts) + 1):
            path = "\\".join(parts[:depth])
            key = (spec.domain.lower(), path.lower())
            if key in paths:
                continue
            paths.add(key)
            out.append(spec if depth == len(parts) else GroupSpec(name=path, domain=spec.domain))
    return out


def build_sites(scenario: Scenario, *, ca: CertificateAuthority, start_ms: int) -> dict[str, Site]:
    farm_of = farms(scenario)
    farm_groups: dict[str, dict[str, Group]] = {}
    farm_domains: dict[str, dict[str, Domain]] = {}
    for site in scenario.sites:
        farm = farm_of[site.name]
        tree = farm_groups.setdefault(farm, {})
        domains = farm_domains.setdefault(farm, {})
        for group_spec in _with_ancestors(site.groups):
            domain = domains.get(group_spec.domain.lower())
            if domain is None:
                domain = _domain(
                    group_spec.domain, farm=farm, seed=scenario.seed, start_ms=start_ms
                )
                domains[group_spec.domain.lower()] = domain
            group = _group(
                group_spec, domain=domain, farm=farm, seed=scenario.seed, start_ms=start_ms
            )
            tree.setdefault(group.id, group)  # the first site to define a group wins

    sites: dict[str, Site] = {}
    key_index = 1
    for number, spec in enumerate(scenario.sites):
        servers = []
        for index, server_spec in enumerate(spec.servers):
            hostnames = server_spec.resolved_hostnames()
            pair = ca.issue_server_certificate(
                common_name=hostnames[0], hostnames=hostnames, key_index=key_index
            )
            key_index += 1
            servers.append(
                ManagementServer(
                    name=server_spec.name,
                    site=spec.name,
                    version=spec.version,
                    hostnames=hostnames,
                    initial=pair,
                    index=index,
                )
            )
        seed, farm = scenario.seed, farm_of[spec.name]
        tree = farm_groups[farm]
        database = {gid: g.copy() for gid, g in tree.items()}
        fleet_groups = [
            FleetGroup(
                group=(member := database[group_id(seed, farm, g.domain, g.name)]),
                clients=g.clients,
                offline_fraction=g.offline.fraction if g.offline else 0.0,
                offline_days=g.offline.days if g.offline else 0.0,
                policy=policy_owner(member, database),
                offline_since_days=g.offline.since_days if g.offline else 0.0,
                agent_versions=tuple(g.agent_versions.items()),
            )
            for g in spec.groups
        ]
        bits = CertificateBits()
        mask = 0
        for server in servers:
            mask |= bits.bit(server.client_facing.fingerprint_sha256)
        fleet = Fleet(
            groups=fleet_groups,
            server_count=len(servers),
            start_ms=start_ms,
            trusted_mask=mask,
            rng=np.random.default_rng([scenario.seed, number]),
            bits=bits,
        )
        fleet.agent_versions[0] = full_version(spec)
        for server in servers:
            fleet.s_bit[server.index] = bits.bit(server.client_facing.fingerprint_sha256)
        limit = spec.rate_limit or scenario.rate_limit
        sites[spec.name] = Site(
            name=spec.name,
            id=twin_id(str(scenario.seed), "site", spec.name),
            version=spec.version,
            version_full=full_version(spec),
            api_sequence=API_SEQUENCE,
            servers=servers,
            groups=database,
            domains={d.id: d for d in farm_domains[farm_of[spec.name]].values()},
            fleet=fleet,
            tokens=TokenStore(ttl_s=scenario.token_ttl_s),
            rate_limit=RateLimit(limit.calls_per_minute if limit else None),
            client_prefix=hashlib.sha256(f"{scenario.seed}:{spec.name}".encode())
            .hexdigest()[:24]
            .upper(),
            number=number,
        )
    return sites


def certificate_time() -> datetime:
    # TLS clients check validity against the real clock, not the simulated one.
    return datetime.now(UTC)
