"""Value objects shared by the messages of several services. No secrets: only references."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HostOpsTarget(_Value):
    """How host operations (certificate install, restarts, partner delete/re-add) reach a site."""

    driver: Literal["twin", "winrm", "manual"]
    # twin: the simulator's control-plane URL; winrm: the WinRM endpoint; manual: unused.
    endpoint: str | None = None
    credential_ref: str | None = None


class ServerTarget(_Value):
    """One management server of a site, as workers need it to act and to verify."""

    name: str
    address: str = Field(description="Host or IP the workers connect to for TLS checks")
    hostnames: list[str] = Field(default_factory=list, description="Names clients use (SANs)")
    version: str
    # SEPM port name ("8443", "8446", "443", "8014") -> the port actually listening.
    ports: dict[str, int] = Field(default_factory=dict)

    def tls_ports(self) -> dict[str, int]:
        """Every port that must present the server certificate (8014 is plain HTTP)."""
        return {name: port for name, port in self.ports.items() if name != "8014"}


class SiteTarget(_Value):
    """A site (one SEPM database) and everything a worker needs to reach it, minus secrets."""

    site: str
    version: str
    api_url: str = Field(description="SEPM REST base, e.g. https://sepm-a1:8446/sepm/api/v1")
    credential_ref: str = Field(description="Vault reference of the SEPM API account")
    # PEM certificates trusted for TLS to SEPM; during a rotation both the old and the new.
    trusted_certificates_pem: list[str] = Field(default_factory=list)
    servers: list[ServerTarget]
    host_ops: HostOpsTarget
    # Which publication of the site's target (certrotate_shared.site_directory) this copy was
    # taken from. Workers act on the published target, never on these fields, and wait while
    # the vault still holds an older publication than this.
    revision: int | None = None

    def server(self, name: str) -> ServerTarget:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(f"site {self.site!r} has no server {name!r}")


class GroupTarget(_Value):
    """A group's policy serial that a propagation watch waits for (or any later one)."""

    group_id: str
    full_path_name: str
    target_serial: str
