"""100,000 clients at risk (issue 11 item 10): the list reaches an operator in pages or as a
stream, a "proceed" records it by reference (id, count, SHA-256) instead of one history row of
100,000 entries, and the accepted clients are read back exactly, later, through the rotation.

The twin and the whole embedded stack (real orchestrator and client-monitor) run in this
event loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from certrotate.stack import ClockSync, start_embedded
from certrotate.twin_inventory import inventory_entries
from sepm_twin import Twin

pytestmark = pytest.mark.integration

ADMIN = {"username": "svc", "password": "pw-at-risk-test-123"}
CLIENTS = 100_000
SCENARIO = {
    "clock": {"speed": 3600},
    "admin": ADMIN,
    "sites": [
        {
            "name": "hq", "version": "14.3.9000", "servers": [{"name": "sepm-hq-1"}],
            # Laptops away for three days: nobody fetches the new policy while the test runs.
            "groups": [
                {"name": "My Company\\Default", "clients": CLIENTS,
                 "offline": {"fraction": 1.0, "days": 3}},
            ],
        }
    ],
}  # fmt: skip


async def eventually(probe: Any, what: str, attempts: int = 600) -> Any:
    for _ in range(attempts):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def test_a_100k_at_risk_list_is_paged_streamed_and_accepted_by_reference(
    tmp_path: Path,
) -> None:
    twin = await Twin.start(SCENARIO)
    try:
        topology = twin.topology()
        async with httpx.AsyncClient(base_url=twin.base_url) as control:
            clock = (await control.get("/twin/v1/clock")).json()
            issued = await control.post(
                "/twin/v1/ca/issue",
                json={
                    "hostnames": topology["sites"][0]["servers"][0]["hostnames"],
                    "format": "pkcs12",
                    "password": "bundle-pass",
                },
            )
        sync = ClockSync(
            speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"]
        )
        # The twin here does not throttle: no pacing, or the 100 pages take minutes.
        unpaced = {"client-monitor": {"sepm_calls_per_minute": 0}}
        stack = await start_embedded(
            tmp_path / "data", api_port=0, clock=sync, service_settings=unpaced
        )
        try:
            headers = {"Authorization": f"Bearer {stack.admin_token}"}
            async with httpx.AsyncClient(
                base_url=stack.api_url, headers=headers, timeout=120
            ) as api:
                for collection, _, body in inventory_entries(topology, **ADMIN):
                    assert (await api.post(f"/v1/{collection}", json=body)).status_code == 201
                certificate = {
                    "format": "pkcs12",
                    "data_b64": issued.json()["install"]["data_b64"],
                    "password": "bundle-pass",
                }
                created = await api.post(
                    "/v1/rotations",
                    json={
                        "site": "hq",
                        "certificate": certificate,
                        "options": {"max_wait_days": 0.05},
                    },
                )
                assert created.status_code == 201, created.text
                rotation_id = created.json()["id"]
                await _check_lists_and_accept(api, rotation_id)
        finally:
            await stack.stop()
    finally:
        await twin.stop()


async def _check_lists_and_accept(api: httpx.AsyncClient, rotation_id: str) -> None:
    at_risk = f"/v1/rotations/{rotation_id}/at-risk"

    async def first_page() -> httpx.Response | None:
        page = await api.get(at_risk, params={"limit": 30_000})
        return page if page.status_code == 200 else None

    # Pages of 30,000 by uniqueId, each naming the next page's cursor.
    page = await eventually(first_page, "the watch's first scan")
    paged: list[str] = []
    while True:
        body = page.json()
        assert len(body["clients"]) <= 30_000
        paged += [c["uniqueId"] for c in body["clients"]]
        assert body["next_cursor"] == page.headers.get("x-next-cursor")
        if body["next_cursor"] is None:
            break
        page = await api.get(at_risk, params={"limit": 30_000, "cursor": body["next_cursor"]})
        assert page.status_code == 200, page.text
    assert len(paged) == CLIENTS and paged == sorted(set(paged))

    # The whole list as one stream of JSON lines, in the same order.
    async with api.stream("GET", at_risk, params={"format": "jsonl"}) as streamed:
        assert streamed.headers["content-type"].startswith("application/jsonl")
        lines = [line async for line in streamed.aiter_lines() if line]
    assert [json.loads(line)["uniqueId"] for line in lines] == paged

    # The maximum wait passes; an approver accepts the 100,000 clients.
    async def paused() -> bool:
        view = (await api.get(f"/v1/rotations/{rotation_id}")).json()
        return bool(view["state"] == "paused" and view.get("pending_decision"))

    await eventually(paused, "the pause at the maximum wait")
    decided = await api.post(
        f"/v1/rotations/{rotation_id}/decide",
        json={"decision": "proceed", "reason": "lab fleet, re-imaged", "change_id": "CHG100K"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["gates"]["orphan_risk"]["accepted"]["accepted_count"] == CLIENTS

    # The history row names the list; it does not hold it.
    events = (await api.get(f"/v1/rotations/{rotation_id}/events", params={"limit": 1000})).json()
    decision = next(e for e in events["items"] if e["type"] == "DecisionMade")
    reference = decision["detail"]["accepted_list"]
    assert reference["count"] == CLIENTS and len(reference["sha256"]) == 64
    assert len(json.dumps(decision)) < 2_000

    # Later, the accepted clients come back exactly: same clients, same digest.
    accepted = f"/v1/rotations/{rotation_id}/accepted-clients"
    whole = await api.get(accepted, params={"format": "jsonl"})
    assert hashlib.sha256(whole.content).hexdigest() == reference["sha256"]
    assert [json.loads(line)["uniqueId"] for line in whole.text.splitlines()] == paged
