"""The four real services in this process (embedded stack: SQLite, the in-process log) against
the twin in this process, with the API and each service's app reachable: for tests that drive
a whole rotation and look at what it left (metrics, traces)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from certrotate.data_dir import stack_secrets
from certrotate.stack import ClockSync, EmbeddedStack, start_embedded
from certrotate.twin_inventory import register_twin
from certrotate_shared.internal_api import TOKEN_HEADER
from sepm_twin import Twin
from tests.support.fleets import partner_fleet

ADMIN = {"username": "svc", "password": "pw-metrics-test-123"}
SCENARIO = partner_fleet(ADMIN)


@dataclass
class Live:
    stack: EmbeddedStack
    twin: Twin
    api: httpx.AsyncClient
    internal_token: str

    async def scrape(self, service: str, **headers: str) -> httpx.Response:
        app = self.stack.runtimes[service].app
        assert app is not None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{service}"
        ) as client:
            return await client.get("/metrics", headers=headers)

    async def metrics(self, service: str = "orchestrator") -> str:
        response = await self.scrape(service, **{TOKEN_HEADER: self.internal_token})
        assert response.status_code == 200, response.text
        return response.text

    async def rotate(self, site: str) -> str:
        async with httpx.AsyncClient(base_url=self.twin.base_url, timeout=30) as twin:
            servers = next(
                s
                for s in (await twin.get("/twin/v1/topology")).json()["sites"]
                if s["name"] == site
            )["servers"]
            hostnames = sorted({h for s in servers for h in s["hostnames"]})
            issued = (
                await twin.post(
                    "/twin/v1/ca/issue",
                    json={"hostnames": hostnames, "format": "pkcs12", "password": "pkcs-pass-1"},
                )
            ).json()["install"]
        body = {
            "site": site,
            "certificate": {
                "format": "pkcs12",
                "data_b64": issued["data_b64"],
                "password": issued["password"],
            },
            "change_id": f"CHG-{uuid.uuid4().hex[:6]}",
        }
        response = await self.api.post("/v1/rotations", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def state(self, rotation_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/rotations/{rotation_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def eventually(check: Any, *, timeout: float = 300.0) -> Any:
    """Wait for a condition (generous: the machine is shared); not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{check.__name__} was not met in time")
        await asyncio.sleep(0.2)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    twin = await Twin.start(SCENARIO)
    try:
        async with httpx.AsyncClient(base_url=twin.base_url) as control:
            clock = (await control.get("/twin/v1/clock")).json()
        sync = ClockSync(
            speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"]
        )
        stack = await start_embedded(tmp_path / "data", api_port=0, clock=sync)
        try:
            headers = {"Authorization": f"Bearer {stack.admin_token}"}
            async with httpx.AsyncClient(
                base_url=stack.api_url, headers=headers, timeout=30
            ) as api:
                await register_twin(
                    api, twin.topology(), username=ADMIN["username"], password=ADMIN["password"]
                )
                token = stack_secrets(tmp_path / "data")["internal_token"]
                yield Live(stack=stack, twin=twin, api=api, internal_token=token)
        finally:
            await stack.stop()
    finally:
        await twin.stop()
