"""Chaos: every service of a distributed stack SIGKILLed at random moments of a rotation of a
two-site replication farm, over many seeded runs (issue 9).

After each run, what an operator would check: the rotation ended (completed), no client is
orphaned (the twin's ground truth), every host operation ran exactly once, every group and
location verifies the server certificate exactly as it did before, and replication is back.

Runs: CERTROTATE_CHAOS_RUNS seeded runs (default 1, what CI runs: one run costs 2-4 minutes on
the CI machine, see docs/reliability.md) from seed CERTROTATE_CHAOS_FIRST_SEED (default 1);
CERTROTATE_CHAOS_KILLS kills per service and run (default 1); CERTROTATE_E2E_SEED=N replays one
run. Each run appends its outcome to var/test-logs/e2e/chaos-results.jsonl.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from certrotate.distributed import SERVICES
from tests.e2e.conftest import MakeWorld
from tests.e2e.support import (
    E2E,
    LOG_ROOT,
    SHORT_LEASES,
    TERMINAL,
    acted,
    missing_operations,
    scenario,
    site_servers,
    tls_fingerprints,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

RUNS = int(os.environ.get("CERTROTATE_CHAOS_RUNS") or 1)
KILLS_PER_SERVICE = int(os.environ.get("CERTROTATE_CHAOS_KILLS") or 1)
FIRST_SEED = int(os.environ.get("CERTROTATE_CHAOS_FIRST_SEED") or 1)
REPLAY = os.environ.get("CERTROTATE_E2E_SEED")
SEEDS = [int(REPLAY)] if REPLAY else [FIRST_SEED + n for n in range(RUNS)]
RESULTS = LOG_ROOT / "chaos-results.jsonl"

# Steps in which a service has work in flight (the two waits last ~8 s with an 8-hour
# heartbeat, the others a fraction of a second).
KILL_STEPS = (
    "break_replication",
    "disable_verification",
    "await_disable_propagation",
    "update_certificate",
    "enable_verification",
    "await_enable_propagation",
    "restore_replication",
)
FORWARD = ("inspect", *KILL_STEPS[:3], "gates", *KILL_STEPS[3:])


@dataclass
class Kill:
    service: str
    step: str
    delay: float
    done_at: float | None = None
    seen_step: str | None = None


def chaos_plan(rng: random.Random, kills_per_service: int = 1) -> list[Kill]:
    """Each service killed a random 0-1.5 s after a random step begins (more than once: in
    step order, each kill after the service is back from the one before)."""
    plan: list[Kill] = []
    for name in SERVICES:
        steps = sorted(rng.sample(KILL_STEPS, kills_per_service), key=FORWARD.index)
        plan += [Kill(name, step, rng.uniform(0.0, 1.5)) for step in steps]
    return plan


def farm(seed: int) -> dict[str, Any]:
    """Site A (two servers) replicating with site B. One group of A has verification off to
    begin with, in two locations: a rotation must leave it off, not 'restore' it to on."""
    world = scenario(heartbeat_s=8 * 3600, seed=seed)
    site_a = world["sites"][0]
    site_a["groups"][1] |= {"secure_communications": False, "locations": ["Default", "Remote"]}
    return world


async def unleash(e2e: E2E, rotation_id: str, plan: list[Kill]) -> list[Kill]:
    """Carry out the plan while the rotation runs; returns the kills it could not place
    because the rotation ended first."""
    started = time.monotonic()
    pending = list(plan)
    due: dict[int, float] = {}
    restarts: dict[str, asyncio.Task[str]] = {}
    while pending:
        try:
            view = await e2e.view(rotation_id)
        except httpx.TransportError:  # the orchestrator is down or restarting
            await asyncio.sleep(0.1)
            continue
        if view["state"] != "running":
            break
        step = view["current_step"]["name"]
        reached = FORWARD.index(step) if step in FORWARD else -1
        now = time.monotonic()
        for kill in pending:
            first_of_its_service = next(k for k in pending if k.service == kill.service) is kill
            if id(kill) in due or not first_of_its_service or reached < FORWARD.index(kill.step):
                continue
            due[id(kill)] = now + kill.delay
        for kill in [k for k in pending if due.get(id(k), now + 1) <= now]:
            restart = restarts.get(kill.service)
            if restart is not None and not restart.done():
                continue  # still coming back from its previous kill
            kill.done_at, kill.seen_step = now - started, step
            print(f"  SIGKILL {kill.service} at {kill.done_at:.1f} s during {step}", flush=True)
            e2e.supervisor.kill(kill.service)
            restarts[kill.service] = asyncio.ensure_future(e2e.supervisor.restart(kill.service))
            pending.remove(kill)
            del due[id(kill)]
        await asyncio.sleep(0.1)
    await asyncio.gather(*restarts.values())
    return pending


@pytest.mark.parametrize("seed", SEEDS)
async def test_every_service_killed_at_random_moments_the_farm_rotates_exactly_once(
    world: MakeWorld, seed: int
) -> None:
    rng = random.Random(seed)
    plan = chaos_plan(rng, KILLS_PER_SERVICE)
    print(f"\nchaos seed {seed} (CERTROTATE_E2E_SEED={seed} replays it): "
          + ", ".join(f"{k.service}@{k.step}+{k.delay:.2f}s" for k in plan))  # fmt: skip
    e2e = await world(farm(seed), settings=SHORT_LEASES)
    await e2e.register()
    originals = {site: await e2e.twin.verification_settings(site) for site in ("site-a", "site-b")}
    off = [where for where, on in originals["site-a"].items() if not on]
    assert len(off) == 2 and all("My Company\\Servers/" in where for where in off), originals
    partners = {site: await e2e.twin.settled_replication(site) for site in ("site-a", "site-b")}
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    started = time.monotonic()
    rotation_id, new_fp = await e2e.rotate()

    unplaced = await unleash(e2e, rotation_id, plan)
    view = await e2e.wait_for(
        rotation_id, lambda v: v["state"] != "running", timeout=240, what="an end or a pause"
    )
    orphans = (await e2e.twin.orphans())["count"]
    operations = await e2e.twin.operations()
    after = {site: await e2e.twin.verification_settings(site) for site in ("site-a", "site-b")}
    replication = {site: await e2e.twin.settled_replication(site) for site in ("site-a", "site-b")}
    record = {
        "seed": seed,
        "state": view["state"],
        "reason": view.get("reason"),
        "pending_decision": view.get("pending_decision"),
        "kills": [(k.service, k.seen_step, round(k.done_at or 0, 1)) for k in plan if k.done_at],
        "kills_not_placed": [(k.service, k.step) for k in unplaced],
        "orphaned": orphans,
        "host_operations_twice": [list(k) for k, n in acted(operations).items() if n > 1],
        "host_operations_missing": missing_operations(acted(operations)),
        "verification_as_before": after == originals,
        "replication": replication,
        "real_seconds": round(time.monotonic() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(record) + "\n")
    print(f"  result: {record}", flush=True)

    assert view["state"] in TERMINAL, f"seed {seed}: not ended: {record}"
    assert view["state"] == "completed", f"seed {seed}: {record}"
    assert orphans == 0, f"seed {seed}: {record}"
    done = acted(operations)
    assert [key for key, n in done.items() if n != 1] == [], f"seed {seed}: {done}"
    assert missing_operations(done) == [], f"seed {seed}: {done}"
    assert after == originals, f"seed {seed}: verification settings changed"
    assert replication == partners, f"seed {seed}: replication {replication} != {partners}"
    assert replication["site-a"] == {"site-b": "SUCCEEDED"}
    for server in await site_servers(e2e):
        assert set((await tls_fingerprints(server)).values()) == {new_fp}, server["name"]
        assert before[server["name"]] != new_fp
