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


def inventory_entries(
    topology: dict[str, Any], *, username: str, password: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """(collection, name, body) of every site and server of the twin, sites first."""
    entries: list[tuple[str, str, dict[str, Any]]] = []
    for site in topology["sites"]:
        body = site_body(site, topology, username=username, password=password)
        entries.append(("sites", site["name"], body))
    for site in topology["sites"]:
        for server in site["servers"]:
            payload = server_body({**server, "site": site["name"], "version": site["version"]})
            entries.append(("servers", server["name"], payload))
    return entries


async def register_twin(
    api: httpx.AsyncClient, topology: dict[str, Any], *, username: str, password: str
) -> None:
    """Create or update every site and server of the twin in the inventory."""
    for collection, name, body in inventory_entries(topology, username=username, password=password):
        response = await api.put(f"/v1/{collection}/{name}", json=body)
        if response.status_code == 404:
            response = await api.post(f"/v1/{collection}", json=body)
        response.raise_for_status()
