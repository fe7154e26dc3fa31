"""A management server: its services, its certificate stores, and what each port serves.

SEPM keeps the server certificate three times (KB 158445, KB 187099): in the Tomcat keystore
(tomcat\\etc\\keystore.jks), as Apache's PEM pair (apache\\conf\\ssl\\server.crt, server.key),
and as the certificate SEPM records in its database and puts in the management server list
that clients receive with their policy. Each service loads its store when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sepm_twin.certificates import KeyPair
from sepm_twin.groups import twin_id

PORTS = ("8443", "8446", "443", "8445", "8014")
TLS_PORTS = ("8443", "8446", "443", "8445")
STORES = ("tomcat", "apache")
# Which store each TLS port's service reads: Tomcat the keystore, Apache server.crt/.key.
STORE_OF_PORT = {"8443": "tomcat", "8446": "tomcat", "443": "apache", "8445": "apache"}


def version_major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return 14


def services_for(version: str) -> tuple[str, ...]:
    """semapisrv exists from 14.0 on; earlier versions serve the REST API from Tomcat (semsrv)."""
    if version_major(version) >= 14:
        return ("semsrv", "semwebsrv", "semapisrv")
    return ("semsrv", "semwebsrv")


@dataclass
class Backup:
    """What a backup keeps: both stores and SEPM's record, for an exact rollback."""

    id: str
    stores: dict[str, KeyPair]
    recorded: KeyPair

    @property
    def pair(self) -> KeyPair:
        """The client-facing certificate (Apache's), as the one-store backup reported it."""
        return self.stores["apache"]


@dataclass
class ManagementServer:
    name: str
    site: str
    version: str
    hostnames: list[str]
    initial: KeyPair
    index: int  # position within its site; clients refer to servers by it
    stores: dict[str, KeyPair] = field(default_factory=dict)  # tomcat | apache -> pair on disk
    recorded: KeyPair | None = None  # SEPM's record, in the management server list
    services: dict[str, str] = field(default_factory=dict)  # name -> running | stopped
    served: dict[str, KeyPair] = field(default_factory=dict)  # TLS port -> loaded pair
    backups: dict[str, Backup] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stores = dict.fromkeys(STORES, self.initial)
        self.recorded = self.initial
        self.services = dict.fromkeys(services_for(self.version), "running")
        self.served = dict.fromkeys(TLS_PORTS, self.initial)

    @property
    def id(self) -> str:
        return twin_id("server", self.site, self.name)

    @property
    def record(self) -> KeyPair:
        assert self.recorded is not None
        return self.recorded

    def owner_of(self, port: str) -> str:
        """The service whose process listens on a port."""
        if port in ("443", "8445", "8014"):
            return "semwebsrv"  # Apache
        if port == "8446" and "semapisrv" in self.services:
            return "semapisrv"
        return "semsrv"  # Tomcat

    def ports_of(self, service: str) -> list[str]:
        return [p for p in PORTS if self.owner_of(p) == service]

    def port_open(self, port: str) -> bool:
        return self.services.get(self.owner_of(port)) == "running"

    def load(self, service: str) -> None:
        """A service starting reads its store for each TLS port it serves."""
        for port in self.ports_of(service):
            if port in STORE_OF_PORT:
                self.served[port] = self.stores[STORE_OF_PORT[port]]

    @property
    def client_facing(self) -> KeyPair:
        """What clients meet: the certificate Apache loaded (port 443)."""
        return self.served["443"]

    @property
    def manager_facing(self) -> KeyPair:
        """What partner sites meet: the certificate Tomcat loaded (port 8443)."""
        return self.served["8443"]

    @property
    def accepts_clients(self) -> bool:
        # Apache takes the client's call and Tomcat answers it.
        return all(self.services.get(s) == "running" for s in ("semsrv", "semwebsrv"))
