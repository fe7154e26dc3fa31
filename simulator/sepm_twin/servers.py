"""A management server: its services, its installed certificate, and what each port serves."""

from __future__ import annotations

from dataclasses import dataclass, field

from sepm_twin.certificates import KeyPair
from sepm_twin.groups import twin_id

PORTS = ("8443", "8446", "443", "8014")
TLS_PORTS = ("8443", "8446", "443")


def version_major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return 14


def services_for(version: str) -> tuple[str, ...]:
    """semapisrv exists from 14.0 on; earlier versions host the REST API in semwebsrv."""
    if version_major(version) >= 14:
        return ("semsrv", "semwebsrv", "semapisrv")
    return ("semsrv", "semwebsrv")


@dataclass
class Backup:
    id: str
    pair: KeyPair


@dataclass
class ManagementServer:
    name: str
    site: str
    version: str
    hostnames: list[str]
    installed: KeyPair
    index: int  # position within its site; clients refer to servers by it
    services: dict[str, str] = field(default_factory=dict)  # name -> running | stopped
    served: dict[str, KeyPair] = field(default_factory=dict)  # TLS port -> loaded pair
    backups: dict[str, Backup] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.services = dict.fromkeys(services_for(self.version), "running")
        self.served = dict.fromkeys(TLS_PORTS, self.installed)

    @property
    def id(self) -> str:
        return twin_id("server", self.site, self.name)

    def owner_of(self, port: str) -> str:
        """The service whose process listens on a port."""
        if port == "8446" and "semapisrv" in self.services:
            return "semapisrv"
        return "semwebsrv"

    def ports_of(self, service: str) -> list[str]:
        return [p for p in PORTS if self.owner_of(p) == service]

    def port_open(self, port: str) -> bool:
        return self.services.get(self.owner_of(port)) == "running" and (
            self.services.get("semwebsrv") == "running"
        )

    @property
    def client_facing(self) -> KeyPair:
        """What clients see: the certificate the webserver loaded (port 443)."""
        return self.served["443"]

    @property
    def accepts_clients(self) -> bool:
        return all(self.services.get(s) == "running" for s in ("semsrv", "semwebsrv"))
