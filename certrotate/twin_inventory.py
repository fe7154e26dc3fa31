"""Register a twin's sites and servers in certrotate's inventory, as an operator would for
real SEPM sites (used by the demo, rehearsals and the end-to-end tests)."""

from __future__ import annotations

from typing import Any

import httpx


def site_body(
    site: dict[str, Any], topology: dict[str, Any], *, username: str, password: str
) -> dict[str, Any]:
    """The inventory entry of one twin site: its API, trust set, host agent and account."""
    return {
        "name": site["name"],
        "api_url": site["api_url"],
        "version": site["version"],
        "replication_partners": site["replication_partners"],
        # The twin's corporate CA signs every server certificate, old and new.
        "trusted_certificates_pem": [topology["ca_certificate_pem"]],
        "host_ops": {"driver": "twin", "endpoint": topology["control_url"]},
        "sepm_credentials": {"username": username, "password": password, "domain": ""},
    }


def server_body(server: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": server["name"],
        "site": server["site"],
        "address": "127.0.0.1",
        "hostnames": server["hostnames"],
        "version": server.get("version") or "14.3.9000",
        "ports": server["ports"],
    }


async def register_twin(
    api: httpx.AsyncClient, topology: dict[str, Any], *, username: str, password: str
) -> None:
    """Create or update every site and server of the twin in the inventory."""
    for site in topology["sites"]:
        body = site_body(site, topology, username=username, password=password)
        response = await api.put(f"/v1/sites/{site['name']}", json=body)
        if response.status_code == 404:
            response = await api.post("/v1/sites", json=body)
        response.raise_for_status()
        for server in site["servers"]:
            payload = server_body({**server, "version": site["version"]})
            response = await api.put(f"/v1/servers/{server['name']}", json=payload)
            if response.status_code == 404:
                response = await api.post("/v1/servers", json=payload)
            response.raise_for_status()
