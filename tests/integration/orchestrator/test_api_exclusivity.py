"""One active rotation per site and per replication farm, enforced by the database."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid

import httpx
import pytest

from certrotate_shared.clock import ManualClock
from tests.integration.orchestrator import racer
from tests.integration.orchestrator.harness import api_client, orchestrator
from tests.integration.orchestrator.support import (
    ADMIN,
    INTERNAL,
    rotation_body,
    server_body,
    site_body,
    wait_until,
)

pytestmark = pytest.mark.integration


async def register(env, name: str, partners: list[str]) -> None:
    assert (await env.api.post("/v1/sites", json=site_body(name, partners))).status_code == 201
    created = await env.api.post("/v1/servers", json=server_body(f"{name}-s1", name))
    assert created.status_code == 201, created.text


def assert_busy(response: httpx.Response, holder: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "site_busy"
    assert response.json()["rotation_id"] == holder


async def test_concurrent_requests_for_one_site_start_exactly_one_rotation(embedded):
    env = embedded
    env.worker.propagate = False  # the winner stays active while the others arrive
    answers = await asyncio.gather(
        *(env.api.post("/v1/rotations", json=rotation_body()) for _ in range(8))
    )
    created = [r for r in answers if r.status_code == 201]
    assert len(created) == 1, [r.status_code for r in answers]
    holder = created[0].json()["id"]
    for refused in (r for r in answers if r.status_code != 201):
        assert_busy(refused, holder)
    listed = (await env.api.get("/v1/rotations", params={"site": "site-a"})).json()["items"]
    assert [r["id"] for r in listed] == [holder]


async def test_a_replication_partner_is_busy_while_its_farm_rotates(embedded):
    env = embedded
    env.worker.propagate = False
    # site-a lists site-b; site-b lists nobody but site-c: a farm of three, transitively.
    await register(env, "site-b", ["site-c"])
    await register(env, "site-c", [])
    await register(env, "site-d", [])
    holder = (await env.api.post("/v1/rotations", json=rotation_body())).json()["id"]
    assert_busy(await env.api.post("/v1/rotations", json=rotation_body("site-b")), holder)
    assert_busy(await env.api.post("/v1/rotations", json=rotation_body("site-c")), holder)
    other = await env.api.post("/v1/rotations", json=rotation_body("site-d"))
    assert other.status_code == 201, other.text


async def test_after_a_rotation_completes_the_site_accepts_a_new_one(embedded):
    env = embedded
    first = (await env.api.post("/v1/rotations", json=rotation_body())).json()["id"]

    async def completed() -> bool:
        view = (await env.api.get(f"/v1/rotations/{first}")).json()
        return view["state"] == "completed"

    await wait_until(completed)
    second = await env.api.post("/v1/rotations", json=rotation_body())
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first


async def test_a_cancelled_rotation_frees_its_site(embedded):
    env = embedded
    env.worker.propagate = False
    first = (await env.api.post("/v1/rotations", json=rotation_body())).json()["id"]

    async def waiting() -> bool:
        view = (await env.api.get(f"/v1/rotations/{first}")).json()
        return view["current_step"]["name"] == "await_disable_propagation"

    await wait_until(waiting)
    assert_busy(await env.api.post("/v1/rotations", json=rotation_body()), first)
    env.worker.propagate = True
    cancelled = await env.api.post(f"/v1/rotations/{first}/cancel", json={"reason": "wrong cert"})
    assert cancelled.status_code == 200

    async def compensated() -> bool:
        view = (await env.api.get(f"/v1/rotations/{first}")).json()
        return view["state"] == "compensated"

    await wait_until(compensated)
    assert (await env.api.post("/v1/rotations", json=rotation_body())).status_code == 201


async def test_two_orchestrator_processes_on_postgresql_start_one_rotation(
    pg_url, master_key, pg_schemas, tmp_path
):
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.extend([schema, f"{schema}_vault"])
    settings = {
        "database_url": pg_url,
        "database_schema": schema,
        "vault_url": pg_url,
        "vault_schema": f"{schema}_vault",  # its own: others' entries are under other keys
        "transport": "local",
        "local_log_path": str(tmp_path / "bus.db"),
        "master_key": master_key,
        "admin_token": ADMIN,
        "internal_token": INTERNAL,
        "rehearsal": True,
    }
    # Migrate and register once, then let two processes race on the same schema.
    runtime = orchestrator(settings, clock=ManualClock())
    await runtime.start(serve_http=False)
    async with api_client(runtime) as api:
        assert (await api.post("/v1/sites", json=site_body("site-a"))).status_code == 201
        assert (await api.post("/v1/servers", json=server_body("sepm-a1"))).status_code == 201
    await runtime.stop()

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=racer.race, args=(settings, "site-a", 4, barrier, results))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    loop = asyncio.get_running_loop()
    answers = [await loop.run_in_executor(None, results.get, True, 120) for _ in procs]
    for proc in procs:
        await loop.run_in_executor(None, proc.join, 30)
    statuses = [a for process_answers in answers for a in process_answers]
    assert len(statuses) == 8
    winners = [body for status, body in statuses if status == 201]
    assert len(winners) == 1, [s for s, _ in statuses]
    holder = winners[0]["id"]
    for status, body in statuses:
        if status != 201:
            assert status == 409 and body["code"] == "site_busy", body
            assert body["rotation_id"] == holder
