"""The twin's own read models: topology, ground truth about clients, convergence."""

from __future__ import annotations

from typing import Any

import numpy as np

from sepm_twin.groups import DEFAULT_SERVER_LIST
from sepm_twin.servers import Backup, ManagementServer
from sepm_twin.site import Site
from sepm_twin.world import World


def server_view(server: ManagementServer) -> dict[str, Any]:
    return {
        "name": server.name,
        "site": server.site,
        "hostnames": server.hostnames,
        "ports": dict(server.ports),
        "served_fingerprint_sha256": server.client_facing.fingerprint_sha256,
        "served_certificate_pem": server.client_facing.certificate_pem.decode(),
        "served_fingerprints": {p: pair.fingerprint_sha256 for p, pair in server.served.items()},
        "installed_fingerprint_sha256": server.stores["tomcat"].fingerprint_sha256,
        "stores": {name: pair.fingerprint_sha256 for name, pair in server.stores.items()},
        "recorded_fingerprint_sha256": server.record.fingerprint_sha256,
        "services": dict(server.services),
        "backups": [backup_view(b) for b in server.backups.values()],
    }


def backup_view(backup: Backup) -> dict[str, Any]:
    return {
        "backup_id": backup.id,
        "fingerprint_sha256": backup.pair.fingerprint_sha256,
        "fingerprints": {
            **{name: pair.fingerprint_sha256 for name, pair in backup.stores.items()},
            "record": backup.recorded.fingerprint_sha256,
        },
    }


def server_list_view(world: World, site: Site) -> dict[str, Any]:
    """The site's management server list as clients receive it with their policy."""
    return {
        "site": site.name,
        "name": DEFAULT_SERVER_LIST,
        "servers": [
            {
                "server": s.name,
                "hostnames": s.hostnames,
                "fingerprint_sha256": s.record.fingerprint_sha256,
                "certificate_pem": s.record.certificate_pem.decode(),
            }
            for s in world.management_server_list(site)
        ],
    }


def site_view(world: World, site: Site, control_url: str) -> dict[str, Any]:
    # The REST base a product would use: the first server whose API port is up.
    first = next((s for s in site.servers if s.port_open("8446")), site.servers[0])
    return {
        "name": site.name,
        "id": site.id,
        "version": site.version,
        "version_full": site.version_full,
        "api_url": f"https://127.0.0.1:{first.ports.get('8446')}/sepm/api/v1",
        "control_api_url": f"{control_url}/sites/{site.name}/sepm/api/v1",
        "replication_partners": [
            p.other(site.name) for p in world.replication.partners_of(site.name)
        ],
        "domains": [{"id": d.id, "name": d.name} for d in site.domains.values()],
        "groups": [
            {
                "id": g.id,
                "fullPathName": g.full_path,
                "domain": g.domain.name,
                "policyInheritanceEnabled": g.inheritance,
            }
            for g in site.sorted_groups()
        ],
        "clients": site.fleet.size,
        "servers": [server_view(s) for s in site.servers],
    }


def topology_view(world: World, control_url: str) -> dict[str, Any]:
    return {
        "control_url": control_url,
        "ca_certificate_pem": world.ca.certificate_pem.decode(),
        "admin": {"username": world.scenario.admin.username, "domain": world.scenario.admin.domain},
        "sites": [site_view(world, s, control_url) for s in world.sites.values()],
    }


def orphans_view(world: World, site_name: str | None, limit: int | None) -> dict[str, Any]:
    ids: list[str] = []
    by_site: dict[str, int] = {}
    for site in world.sites.values():
        if site_name and site.name != site_name:
            continue
        orphaned = np.flatnonzero(site.fleet.orphaned)
        by_site[site.name] = int(orphaned.size)
        room = None if limit is None else max(limit - len(ids), 0)
        ids.extend(site.unique_id(i) for i in orphaned[:room].tolist())
    return {"count": sum(by_site.values()), "by_site": by_site, "client_ids": ids}


def convergence_view(world: World, site_name: str | None) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for site in world.sites.values():
        if site_name and site.name != site_name:
            continue
        fleet = site.fleet
        for gi, group_id in enumerate(fleet.group_ids):
            m = fleet.members[gi]
            group = site.groups[group_id]
            owner = site.policy_owner(group)
            current = fleet.applied_time[m] == owner.policy_time_ms
            orphaned = fleet.orphaned[m]
            online = fleet.online(m)
            groups.append(
                {
                    "site": site.name,
                    "group_id": group_id,
                    "fullPathName": group.full_path,
                    "policySerialNumber": owner.serial,
                    "clients": int(m.size),
                    "up_to_date": int(current.sum()),
                    "online": int(online.sum()),
                    "online_up_to_date": int((current & online).sum()),
                    "orphaned": int(orphaned.sum()),
                    # Every client that is online and can still talk to its server has it.
                    "converged": bool(np.all(current[online])),
                    "all_up_to_date": bool(np.all(current | orphaned)),
                }
            )
    return {
        "now_ms": world.clock.now_ms(),
        "converged": all(g["converged"] for g in groups),
        "groups": groups,
    }


def client_view(world: World, site: Site, index: int) -> dict[str, Any]:
    fleet = site.fleet
    group = site.groups[fleet.group_ids[int(fleet.group[index])]]
    owner = site.policy_owner(group)
    location = owner.locations[int(fleet.location[index])]
    server = site.servers[int(fleet.server[index])]
    return {
        "uniqueId": site.unique_id(index),
        "site": site.name,
        "group_id": group.id,
        "location": location.name,
        "server": server.name,
        "online": bool(fleet.online(np.array([index]))[0]),
        "offline_until_ms": int(fleet.offline_until[index]),
        "orphaned": bool(fleet.orphaned[index]),
        "orphaned_at_ms": int(fleet.orphaned_at[index]) if fleet.orphaned[index] else None,
        "applied_policy_time_ms": int(fleet.applied_time[index]),
        "has_current_policy": int(fleet.applied_time[index]) == owner.policy_time_ms,
        "verifies_server_certificate": bool(fleet.applied_secure[index]),
        "mode": "PUSH" if fleet.applied_push[index] else "PULL",
        "heartbeat_s": int(fleet.applied_hb_ms[index]) // 1000,
        "trusted_fingerprints": fleet.bits.fingerprints(int(fleet.trusted[index])),
        "next_checkin_ms": int(fleet.next_checkin[index]),
        "lastUpdateTime": int(fleet.last_update[index]),
    }
