"""What the orchestrator's inventory sends a worker for one twin site, built from its topology."""

from __future__ import annotations

from typing import Any

from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget


def twin_site_target(
    topology: dict[str, Any],
    name: str,
    *,
    driver: str = "twin",
    credential_ref: str | None = None,
) -> SiteTarget:
    """The site's API, trust set (the twin's CA), servers with their ports, and host agent."""
    site = next(s for s in topology["sites"] if s["name"] == name)
    return SiteTarget(
        site=name,
        version=site["version"],
        api_url=site["api_url"],
        credential_ref=credential_ref or f"sepm/{name}",
        trusted_certificates_pem=[topology["ca_certificate_pem"]],
        servers=[
            ServerTarget(
                name=server["name"],
                address="127.0.0.1",
                hostnames=server["hostnames"],
                version=site["version"],
                ports={port: int(number) for port, number in server["ports"].items()},
            )
            for server in site["servers"]
        ],
        host_ops=HostOpsTarget(driver=driver, endpoint=topology["control_url"]),
    )
