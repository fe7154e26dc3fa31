"""A real twin on loopback for each test, driven over HTTP and TLS like the product drives it."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sepm_twin import Twin

ADMIN = {"username": "admin", "password": "admin", "domain": ""}


def two_site_scenario(**overrides: Any) -> dict[str, Any]:
    scenario: dict[str, Any] = {
        "seed": 11,
        "clock": {"speed": 0},  # tests move time explicitly
        "sites": [
            {
                "name": "site-a",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
                "replication_partners": ["site-b"],
                "groups": [
                    {
                        "name": "My Company\\Default",
                        "clients": 300,
                        "mode": "pull",
                        "heartbeat_s": 300,
                        "offline": {"fraction": 0.05, "days": 10},
                        "locations": ["Default", "Remote"],
                    },
                    {"name": "My Company\\Laptops", "clients": 120, "mode": "push"},
                ],
            },
            {
                "name": "site-b",
                "version": "14.2.1000",
                "servers": [{"name": "sepm-b1"}],
                "replication_partners": ["site-a"],
                "groups": [{"name": "My Company\\Servers", "clients": 80, "mode": "push"}],
            },
        ],
    }
    scenario.update(overrides)
    return scenario


class TwinDriver:
    """What an operator or the product does to the twin, one call at a time."""

    def __init__(self, twin: Twin, http: httpx.AsyncClient) -> None:
        self.twin = twin
        self.http = http
        self.topology = twin.topology()
        self._tokens: dict[str, str] = {}

    def site(self, name: str) -> dict[str, Any]:
        return next(s for s in self.twin.topology()["sites"] if s["name"] == name)

    def server(self, name: str) -> dict[str, Any]:
        return next(
            srv
            for s in self.twin.topology()["sites"]
            for srv in s["servers"]
            if srv["name"] == name
        )

    async def sepm(self, site: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if site not in self._tokens:
            auth = await self.http.post(
                f"/sites/{site}/sepm/api/v1/identity/authenticate", json=ADMIN
            )
            assert auth.status_code == 200, auth.text
            self._tokens[site] = auth.json()["token"]
        headers = {"Authorization": f"Bearer {self._tokens[site]}"}
        return await self.http.request(
            method, f"/sites/{site}/sepm/api/v1{path}", headers=headers, **kwargs
        )

    async def host(self, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        return await self.http.post(
            f"/twin/v1{path}",
            json=body,
            headers={"Idempotency-Key": key or str(uuid.uuid4())},
        )

    async def advance(self, seconds: float) -> None:
        response = await self.http.post("/twin/v1/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    async def orphans(self) -> set[str]:
        body = (await self.http.get("/twin/v1/ground-truth/orphans")).json()
        assert body["count"] == len(body["client_ids"])
        return set(body["client_ids"])

    async def all_computers(self, site: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        index = 1
        while True:
            page = await self.sepm(
                site, "GET", "/computers", params={"pageIndex": index, "pageSize": 100, **params}
            )
            assert page.status_code == 200, page.text
            body = page.json()
            out.extend(body["content"])
            if body["lastPage"]:
                return out
            index += 1

    async def location_ids(self, site: str, group_id: str) -> list[str]:
        """A group's location ids, read from SEPM's "<name>:api/v1/locations/<id>" strings."""
        response = await self.sepm(
            site, "GET", f"/groups/{group_id}/locations", params={"hasName": "true"}
        )
        assert response.status_code == 200, response.text
        return [item.rsplit("/", 1)[-1] for item in response.json()]

    async def groups(self, site: str) -> list[dict[str, Any]]:
        body = (await self.sepm(site, "GET", "/groups", params={"pageSize": 100})).json()
        return list(body["content"])

    async def set_verification(self, site: str, enabled: bool) -> dict[str, str]:
        """Step 2/5: every group and every location; returns group id -> new serial."""
        for group in await self.groups(site):
            for location_id in await self.location_ids(site, group["id"]):
                response = await self.sepm(
                    site,
                    "PATCH",
                    f"/groups/{group['id']}/locations/{location_id}/settings",
                    json={
                        "configuration": {
                            "general_settings": {
                                "security_settings": {"secure_communications": enabled}
                            }
                        }
                    },
                )
                assert response.status_code == 200, response.text
        return {g["id"]: g["policySerialNumber"] for g in await self.groups(site)}

    async def issue(self, hostnames: list[str], fmt: str = "pkcs12") -> dict[str, Any]:
        response = await self.http.post(
            "/twin/v1/ca/issue", json={"hostnames": hostnames, "format": fmt, "password": "pw"}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def swap_certificate(self, server: str) -> str:
        """Step 4 for one server: back up, install, restart every service; returns new fp."""
        hostnames = self.server(server)["hostnames"]
        issued = await self.issue(hostnames)
        assert (await self.host(f"/servers/{server}/certificate/backup")).status_code == 200
        installed = await self.host(f"/servers/{server}/certificate/install", issued["install"])
        assert installed.status_code == 200, installed.text
        for service in self.server(server)["services"]:
            restarted = await self.host(f"/servers/{server}/services/{service}/restart")
            assert restarted.status_code == 200, restarted.text
        return str(issued["fingerprint_sha256"])


async def presented_fingerprint(port: int) -> str:
    """The SHA-256 of the certificate a real TLS handshake on 127.0.0.1:port presents."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
async def driver() -> AsyncIterator[TwinDriver]:
    twin = await Twin.start(two_site_scenario())
    async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
        yield TwinDriver(twin, http)
    await twin.stop()
