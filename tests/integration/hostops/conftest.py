"""A real twin on loopback, and the SiteTargets the inventory would hold for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from certrotate_shared.messages.common import SiteTarget
from sepm_twin import Twin
from tests.support.twin_targets import twin_site_target

SCENARIO: dict[str, Any] = {
    "seed": 5,
    "clock": {"speed": 0},
    "sites": [
        {
            "name": "site-a",
            "version": "14.3.9000",
            "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
            "replication_partners": ["site-b"],
            "groups": [{"name": "My Company\\Default", "clients": 20}],
        },
        {
            "name": "site-b",
            "version": "12.1.6000",
            "servers": [{"name": "sepm-b1"}],
            "replication_partners": ["site-a"],
            "groups": [{"name": "My Company\\Servers", "clients": 10}],
        },
    ],
}


def site_target(topology: dict[str, Any], name: str, *, driver: str = "twin") -> SiteTarget:
    """What the orchestrator's inventory would send a worker for one twin site."""
    return twin_site_target(topology, name, driver=driver)


class LiveTwin:
    def __init__(self, twin: Twin, http: httpx.AsyncClient) -> None:
        self.twin = twin
        self.http = http

    def site(self, name: str) -> SiteTarget:
        return site_target(self.twin.topology(), name)

    def server_view(self, name: str) -> dict[str, Any]:
        return next(
            server
            for site in self.twin.topology()["sites"]
            for server in site["servers"]
            if server["name"] == name
        )

    async def operations(self) -> list[dict[str, Any]]:
        response = await self.http.get("/twin/v1/operations")
        assert response.status_code == 200, response.text
        return list(response.json())

    async def inject(self, **fault: Any) -> None:
        response = await self.http.post("/twin/v1/faults", json=fault)
        assert response.status_code == 201, response.text

    async def issue_pem(self, hostnames: list[str]) -> dict[str, Any]:
        """A new certificate and key from the twin's CA, as PEM."""
        response = await self.http.post(
            "/twin/v1/ca/issue", json={"hostnames": hostnames, "format": "pem"}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
async def live_twin() -> AsyncIterator[LiveTwin]:
    twin = await Twin.start(SCENARIO)
    try:
        async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
            yield LiveTwin(twin, http)
    finally:
        await twin.stop()
