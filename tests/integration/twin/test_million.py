"""A million clients: the twin starts as its own process, runs its clock, and pages them all."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.twin.conftest import ADMIN

pytestmark = pytest.mark.integration

MILLION = 1_000_000


@pytest.fixture
async def twin_process(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    scenario = {
        "seed": 3,
        "clock": {"speed": 3600},
        "sites": [
            {
                "name": "big",
                "servers": [{"name": "sepm-big1"}, {"name": "sepm-big2"}],
                "groups": [
                    {
                        "name": "My Company\\Workstations",
                        "clients": 700_000,
                        "heartbeat_s": 600,
                        "offline": {"fraction": 0.03, "days": 7},
                    },
                    {"name": "My Company\\Servers", "clients": 300_000, "mode": "push"},
                ],
            }
        ],
    }
    path = tmp_path / "million.yaml"
    path.write_text(yaml.safe_dump(scenario))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sepm_twin",
        "--scenario",
        str(path),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        ready = json.loads(line)
        assert ready["event"] == "ready"
        yield ready
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0


async def test_paging_a_million_clients_returns_each_exactly_once(
    twin_process: dict[str, Any],
) -> None:
    assert twin_process["clients"] == MILLION
    async with httpx.AsyncClient(base_url=twin_process["url"], timeout=60) as http:
        clock_before = (await http.get("/twin/v1/clock")).json()["now_ms"]
        api = "/sites/big/sepm/api/v1"
        token = (await http.post(f"{api}/identity/authenticate", json=ADMIN)).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        seen: set[str] = set()
        duplicates = 0
        index = 1
        while True:
            body = (
                await http.get(
                    f"{api}/computers",
                    params={"pageIndex": index, "pageSize": 1000},
                    headers=headers,
                )
            ).json()
            assert body["totalElements"] == MILLION
            for computer in body["content"]:
                uid = computer["uniqueId"]
                duplicates += uid in seen
                seen.add(uid)
            if body["lastPage"]:
                break
            index += 1
        clock_after = (await http.get("/twin/v1/clock")).json()["now_ms"]
    assert index == 1000
    assert duplicates == 0
    assert len(seen) == MILLION
    assert clock_after > clock_before  # the accelerated clock kept running meanwhile
