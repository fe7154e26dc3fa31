"""Everything the twin simulates, advanced in event order on the accelerated clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sepm_twin.build import build_sites, certificate_time
from sepm_twin.certificates import CertificateAuthority, KeyPair
from sepm_twin.clock import SimClock
from sepm_twin.faults import FaultBook
from sepm_twin.oplog import OperationLog
from sepm_twin.replication import Replication
from sepm_twin.scenario import Scenario
from sepm_twin.servers import Backup, ManagementServer
from sepm_twin.site import Site

# The places one certificate lives on a management server: the Tomcat keystore, Apache's PEM
# pair, and SEPM's own record (the management server list's certificate).
ALL_PARTS = ("tomcat", "apache", "record")


class HostError(Exception):
    """A host operation that failed the way SEPM's host would; status is the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        start_ms = scenario.start_ms()
        self.clock = SimClock(start_ms=start_ms, speed=scenario.clock.speed)
        self.ca = CertificateAuthority(now=certificate_time())
        self.faults = FaultBook()
        for fault in scenario.faults:
            self.faults.add(fault)
        self.oplog = OperationLog()
        self.sites: dict[str, Site] = build_sites(scenario, ca=self.ca, start_ms=start_ms)
        self.replication = Replication(
            sites=self.sites,
            faults=self.faults,
            interval_ms=int(scenario.replication.interval_s * 1000),
            duration_ms=int(scenario.replication.duration_s * 1000),
        )
        self.replication.before_change = lambda site, at_ms: site.fleet.tick(at_ms)
        # A partnership set up from either side is on both sites' lists (adding a partner
        # overwrites its database with the adding site's, partner list included).
        for spec in scenario.sites:
            for partner in spec.replication_partners:
                first, second = sorted((spec.name, partner))
                if self.replication.partnerships.get((first, second)) is None:
                    self.replication.establish(spec.name, partner, start_ms)
        self._backups = 0
        self._issued_keys = 1 + sum(len(s.servers) for s in scenario.sites)
        self.last_sync_seconds = 0.0

    # -- time -----------------------------------------------------------------------------
    def sync(self) -> int:
        """Advance everything to the clock's now, replication events in order; returns now."""
        began = time.perf_counter()
        now = self.clock.now_ms()
        while (event := self.replication.next_event_ms()) is not None and event <= now:
            self.replication.step(event)
        for site in self.sites.values():
            site.fleet.tick(now)
        self.last_sync_seconds = time.perf_counter() - began
        return now

    def advance(self, seconds: float) -> int:
        self.sync()
        self.clock.advance(seconds)
        return self.sync()

    def now_iso(self, now_ms: int | None = None) -> str:
        ms = self.clock.now_ms() if now_ms is None else now_ms
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")

    # -- lookups --------------------------------------------------------------------------
    def server(self, name: str) -> ManagementServer:
        for site in self.sites.values():
            found = site.server(name)
            if found is not None:
                return found
        raise HostError(404, "NOT_FOUND", f"No management server named {name!r}")

    def site(self, name: str) -> Site:
        if name not in self.sites:
            raise HostError(404, "NOT_FOUND", f"No site named {name!r}")
        return self.sites[name]

    def find_client(self, unique_id: str) -> tuple[Site, int] | None:
        for site in self.sites.values():
            index = site.parse_unique_id(unique_id)
            if index is not None:
                return site, index
        return None

    # -- certificates ---------------------------------------------------------------------
    def issue_certificate(self, *, hostnames: list[str], common_name: str, days: int) -> KeyPair:
        """A new server certificate from the twin CA, for rehearsing a rotation."""
        self._issued_keys += 1
        return self.ca.issue_server_certificate(
            common_name=common_name, hostnames=hostnames, key_index=self._issued_keys, days=days
        )

    def backup_certificate(self, server: ManagementServer) -> Backup:
        self._backups += 1
        backup = Backup(f"backup-{self._backups}", dict(server.stores), server.record)
        server.backups[backup.id] = backup
        return backup

    def delete_backup(self, server: ManagementServer, backup_id: str) -> bool:
        """Remove a backup's files from the server; False when they were already gone."""
        return server.backups.pop(backup_id, None) is not None

    def install_certificate(
        self, server: ManagementServer, pair: KeyPair, parts: tuple[str, ...] = ALL_PARTS
    ) -> None:
        """Write the certificate to some of the server's stores and/or SEPM's record.

        All three at once is what the console's Update Server Certificate does; nothing is
        served until the services that read a store restart.
        """
        fault = self.faults.fire(("install_failure",), {"site": server.site, "server": server.name})
        if fault is not None:
            raise HostError(
                500, "INSTALL_FAILED", fault.message or "Failed to update the server certificate"
            )
        for part in parts:
            if part == "record":
                server.recorded = pair
            else:
                server.stores[part] = pair
        if "record" in parts:
            self._publish_server_list(self.sites[server.site])

    def restore_certificate(self, server: ManagementServer, backup_id: str) -> Backup:
        backup = server.backups.get(backup_id)
        if backup is None:
            raise HostError(404, "NOT_FOUND", f"No backup {backup_id!r} on {server.name}")
        server.stores = dict(backup.stores)
        server.recorded = backup.recorded
        self._publish_server_list(self.sites[server.site])
        return backup

    def management_server_list(self, site: Site) -> list[ManagementServer]:
        """The servers of the site's management server list, each with its recorded certificate."""
        return list(site.servers)

    def _publish_server_list(self, site: Site) -> None:
        """The certificates clients will pin with their next verifying policy."""
        mask = 0
        for server in self.management_server_list(site):
            mask |= site.fleet.bits.bit(server.record.fingerprint_sha256)
        site.fleet.msl_mask = np.uint64(mask)

    # -- services -------------------------------------------------------------------------
    def check_service(self, server: ManagementServer, service: str) -> None:
        if service in server.services:
            return
        if service == "semapisrv":
            raise HostError(
                409,
                "SERVICE_NOT_AVAILABLE",
                f"semapisrv does not exist on SEPM {server.version}; it was added in 14.0",
            )
        raise HostError(
            404,
            "UNKNOWN_SERVICE",
            f"Unknown service {service!r}; known: {', '.join(server.services)}",
        )

    def stop_service(self, server: ManagementServer, service: str) -> None:
        now = self.sync()
        server.services[service] = "stopped"
        self._publish_server(server, now)

    def start_service(self, server: ManagementServer, service: str) -> None:
        """Start a service; it loads its store's certificate on the ports it serves."""
        now = self.sync()
        fault = self.faults.fire(
            ("service_start_failure",),
            {"site": server.site, "server": server.name, "service": service},
        )
        if fault is not None:
            self._publish_server(server, now)
            raise HostError(
                500,
                "SERVICE_START_FAILED",
                fault.message or f"The {service} service on {server.name} failed to start",
            )
        server.services[service] = "running"
        server.load(service)
        self._publish_server(server, now)
        self.sites[server.site].fleet.notify_server_restart(server.index, now)

    def _publish_server(self, server: ManagementServer, now_ms: int) -> None:
        """Tell the fleet what its clients now meet at this server."""
        fleet = self.sites[server.site].fleet
        fleet.s_up[server.index] = server.accepts_clients
        fleet.s_bit[server.index] = np.uint64(
            fleet.bits.bit(server.client_facing.fingerprint_sha256)
        )

    # -- replication partners -------------------------------------------------------------
    def delete_partner(self, site: str, partner: str) -> None:
        self.site(site)
        self.site(partner)
        self.sync()
        if not self.replication.delete(site, partner):
            raise HostError(404, "NOT_FOUND", f"{site} has no replication partner {partner}")

    def add_partner(self, site: str, partner: str) -> None:
        self.site(site)
        self.site(partner)
        if site == partner:
            raise HostError(400, "INVALID_PARTNER", "A site cannot replicate with itself")
        now = self.sync()
        if self.replication.find(site, partner) is not None:
            raise HostError(409, "ALREADY_PARTNERS", f"{site} already replicates with {partner}")
        self.replication.add(site, partner, now)

    # -- clients --------------------------------------------------------------------------
    def apply_communication_update_package(self, unique_id: str) -> dict[str, Any]:
        found = self.find_client(unique_id)
        if found is None:
            raise HostError(404, "NOT_FOUND", f"No client {unique_id!r}")
        site, index = found
        now = self.sync()
        was_orphaned = bool(site.fleet.orphaned[index])
        site.fleet.apply_communication_update_package(index, now)
        return {"uniqueId": unique_id.upper(), "was_orphaned": was_orphaned, "site": site.name}
