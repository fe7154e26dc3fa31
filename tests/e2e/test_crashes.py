"""Crashes: each service SIGKILLed mid-rotation and restarted; the orchestrator down through a
propagation wait. The rotation completes and no host operation runs twice."""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import httpx
import pytest

from certrotate.distributed import SERVICES
from tests.e2e.conftest import MakeWorld
from tests.e2e.support import (
    E2E,
    TERMINAL,
    assert_site_rotated,
    host_operation_duplicates,
    scenario,
    site_servers,
    until,
)

pytestmark = pytest.mark.e2e

# A crashed replica's work moves to the restarted one when its lease runs out: short leases
# (real seconds) keep these tests quick; the defaults are 60 s, 120 s and 30 s.
SHORT_LEASES: dict[str, dict[str, Any]] = {
    "certificates": {"job_lease_s": 5},
    "replication": {"lease_s": 5},
    "client-monitor": {"lease_s": 5},
}


async def assert_rotated_cleanly(
    e2e: E2E, rotation_id: str, new_fp: str, before: dict[str, str]
) -> dict[str, Any]:
    view = await assert_site_rotated(e2e, rotation_id, new_fp, before, timeout=240)
    operations = await e2e.twin.operations()
    assert host_operation_duplicates(operations) == {}
    # Every host operation a rotation of two servers needs, each exactly once.
    acted = sorted((op["operation"], op["target"]) for op in operations if not op["replay"])
    assert acted == sorted(
        [
            ("replication.partner.delete", "site-a/site-b"),
            ("replication.partner.add", "site-a/site-b"),
        ]
        + [
            (op, server)
            for server in ("sepm-a1", "sepm-a2")
            for op in ("certificate.backup", "certificate.install")
        ]
        + [
            ("service.restart", f"{server}/{service}")
            for server in ("sepm-a1", "sepm-a2")
            for service in ("semsrv", "semwebsrv", "semapisrv")
        ]
    )
    return view


# Where a kill may land: any step of the rotation that sends work to a service (the two waits
# last about 8 s each with an 8-hour heartbeat, the others a fraction of a second).
KILL_STEPS = (
    "break_replication",
    "disable_verification",
    "await_disable_propagation",
    "update_certificate",
    "enable_verification",
    "await_enable_propagation",
)
FORWARD = ("inspect", *KILL_STEPS[:3], "gates", *KILL_STEPS[3:], "restore_replication")


async def test_each_service_killed_once_at_a_random_moment_the_rotation_still_completes_once(
    world: MakeWorld,
) -> None:
    seed = int(os.environ.get("CERTROTATE_E2E_SEED") or random.SystemRandom().randrange(2**31))
    print(f"\nchaos seed {seed} (CERTROTATE_E2E_SEED={seed} replays the same plan)")
    rng = random.Random(seed)
    # Each service: killed in a random step, a random 0-1.5 s after the step is first seen.
    plan = {name: (rng.choice(KILL_STEPS), rng.uniform(0.0, 1.5)) for name in SERVICES}
    print(f"  plan: {plan}")
    e2e = await world(scenario(heartbeat_s=8 * 3600), settings=SHORT_LEASES)
    await e2e.register()
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    rotation_id, new_fp = await e2e.rotate()

    started = time.monotonic()
    due: dict[str, float] = {}
    restarts: list[asyncio.Task[str]] = []
    remaining = dict(plan)
    while remaining:
        try:
            view = await e2e.view(rotation_id)
        except httpx.TransportError:  # the orchestrator is being restarted
            await asyncio.sleep(0.1)
            continue
        assert view["state"] not in TERMINAL, f"the rotation ended before every kill: {due}"
        reached = FORWARD.index(view["current_step"]["name"])
        now = time.monotonic()
        for name, (step, delay) in remaining.items():
            if name in due or reached < FORWARD.index(step):
                continue
            due[name] = now + delay
        for name in [n for n, at in due.items() if at <= now]:
            del remaining[name], due[name]
            print(
                f"  SIGKILL {name} at {now - started:.1f} s during {view['current_step']['name']}"
            )
            e2e.supervisor.kill(name)
            restarts.append(asyncio.ensure_future(e2e.supervisor.restart(name)))
        await asyncio.sleep(0.1)
    await asyncio.gather(*restarts)
    assert {name: s.starts for name, s in e2e.supervisor.services.items()} == dict.fromkeys(
        SERVICES, 2
    )

    await assert_rotated_cleanly(e2e, rotation_id, new_fp, before)


async def test_the_orchestrator_down_through_a_propagation_wait_resumes_and_completes(
    world: MakeWorld,
) -> None:
    e2e = await world(scenario(heartbeat_s=8 * 3600), settings=SHORT_LEASES)
    await e2e.register()
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    rotation_id, new_fp = await e2e.rotate()
    view = await e2e.wait_for(
        rotation_id,
        lambda v: v["current_step"]["name"] == "await_disable_propagation",
        what="the first propagation wait",
    )
    [wait] = view["propagation"]
    e2e.supervisor.kill("orchestrator")
    await e2e.supervisor.services["orchestrator"].wait()

    # While it is down the clients take the policy and the watch ends; its outcome waits in
    # Kafka for the orchestrator.
    monitor = e2e.supervisor.url("client-monitor")

    async def watch_closed() -> bool:
        async with httpx.AsyncClient(base_url=monitor) as http:
            body = (await http.get(f"/v1/watches/{wait['watch_id']}")).json()
        return body["status"] != "open"

    await until(watch_closed, timeout=60, what="the watch to end while the orchestrator is down")
    await e2e.supervisor.start_service("orchestrator")

    view = await assert_rotated_cleanly(e2e, rotation_id, new_fp, before)
    # It went on from the same watch: no second wait, no step repeated.
    assert [(w["step"], w["watch_id"], w["outcome"]) for w in view["propagation"]] == [
        ("await_disable_propagation", wait["watch_id"], "propagated"),
        ("await_enable_propagation", view["propagation"][1]["watch_id"], "propagated"),
    ]
    forward = [(s["name"], s["server"]) for s in view["steps"] if s["phase"] == "forward"]
    assert len(forward) == len(set(forward)), forward
    assert all(s["attempts"] <= 1 for s in view["steps"]), view["steps"]
