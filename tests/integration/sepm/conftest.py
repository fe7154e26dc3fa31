"""A real twin per test, reached over real HTTPS by the connector, driven through its control API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from certrotate_shared.sepm.client import RetryPolicy, SepmClient, SepmCredentials
from sepm_twin import Twin

ADMIN = SepmCredentials(username="admin", password="admin", domain="")


def scenario(clients: int = 3000, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "seed": 5,
        "clock": {"speed": 0},  # tests move time explicitly
        "sites": [
            {
                "name": "site-a",
                "servers": [{"name": "sepm-a1"}],
                "replication_partners": ["site-b"],
                "groups": [
                    {"name": "My Company\\Default", "clients": clients - clients // 3},
                    {"name": "My Company\\Laptops", "clients": clients // 3, "mode": "push"},
                ],
            },
            {"name": "site-b", "version": "14.2.1000", "servers": [{"name": "sepm-b1"}]},
        ],
    }
    spec.update(overrides)
    return spec


class TwinControl:
    def __init__(self, twin: Twin, http: httpx.AsyncClient) -> None:
        self.twin = twin
        self.http = http

    def site(self, name: str = "site-a") -> dict[str, Any]:
        return next(s for s in self.twin.topology()["sites"] if s["name"] == name)

    @property
    def ca_pem(self) -> str:
        return str(self.twin.topology()["ca_certificate_pem"])

    def served_pem(self, site: str = "site-a") -> str:
        return str(self.site(site)["servers"][0]["served_certificate_pem"])

    async def fault(self, **spec: Any) -> str:
        response = await self.http.post("/twin/v1/faults", json=spec)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def faults(self) -> list[dict[str, Any]]:
        return list((await self.http.get("/twin/v1/faults")).json())

    async def host(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.http.post(
            f"/twin/v1{path}", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def client(self, site: str = "site-a", **options: Any) -> SepmClient:
        options.setdefault("trusted_certificates_pem", [self.ca_pem])
        options.setdefault("retry", RetryPolicy(backoff_base_s=0.05, retry_after_cap_s=5.0))
        return SepmClient(self.site(site)["api_url"], options.pop("credentials", ADMIN), **options)


async def started_twins(control: type[TwinControl]) -> AsyncIterator[Any]:
    """A factory of twins (one per call, each driven through `control`), stopped afterwards."""
    started: list[tuple[Twin, httpx.AsyncClient]] = []

    async def start(**kwargs: Any) -> TwinControl:
        twin = await Twin.start(scenario(**kwargs))
        http = httpx.AsyncClient(base_url=twin.base_url, timeout=30)
        started.append((twin, http))
        return control(twin, http)

    yield start
    for twin, http in started:
        await http.aclose()
        await twin.stop()


@pytest.fixture
async def twin_factory() -> AsyncIterator[Any]:
    async for start in started_twins(TwinControl):
        yield start


@pytest.fixture
async def twin(twin_factory: Any) -> TwinControl:
    control: TwinControl = await twin_factory()
    return control
