"""Crashes: the orchestrator down through a propagation wait, and through a wait's deadline.
(Every service SIGKILLed at random moments, over many seeded runs: test_chaos.py.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import MakeWorld
from tests.e2e.support import (
    E2E,
    SHORT_LEASES,
    acted,
    assert_site_rotated,
    missing_operations,
    scenario,
    site_servers,
    tls_fingerprints,
    until,
)

pytestmark = pytest.mark.e2e


async def assert_rotated_cleanly(
    e2e: E2E, rotation_id: str, new_fp: str, before: dict[str, str]
) -> dict[str, Any]:
    view = await assert_site_rotated(e2e, rotation_id, new_fp, before, timeout=240)
    # Every host operation a rotation of two servers needs, each exactly once.
    done = acted(await e2e.twin.operations())
    assert [key for key, n in done.items() if n != 1] == [], done
    assert missing_operations(done) == [], done
    return view


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


async def test_a_wait_deadline_that_passes_while_the_orchestrator_is_down_fires_after_restart(
    world: MakeWorld,
) -> None:
    # 2% of the clients are offline (seen within the horizon), so the wait cannot finish; its
    # deadline is 6 simulated hours (6 s here) away.
    e2e = await world(
        scenario(offline={"fraction": 0.02, "days": 60}, heartbeat_s=3600),
        settings=SHORT_LEASES,
    )
    await e2e.register()
    rotation_id, new_fp = await e2e.rotate(options={"max_wait_days": 0.25})
    view = await e2e.wait_for(
        rotation_id,
        lambda v: (
            v["current_step"]["name"] == "await_disable_propagation" and "max_wait" in v["timers"]
        ),
        what="the first propagation wait",
    )
    due = datetime.fromisoformat(view["timers"]["max_wait"])
    # A power cut: the orchestrator and the client-monitor both go down. With the monitor down
    # too, only the orchestrator's own durable timer can end the wait.
    for name in ("orchestrator", "client-monitor"):
        e2e.supervisor.kill(name)
        await e2e.supervisor.services[name].wait()

    async def past_due() -> bool:
        clock = await e2e.twin.get("/clock")
        return bool(clock["now_ms"] > due.timestamp() * 1000 + 3_600_000)

    await until(past_due, timeout=60, what="the wait's deadline to pass")
    await e2e.supervisor.start_service("orchestrator")

    view = await e2e.wait_for(rotation_id, lambda v: v["state"] == "paused", what="the pause")
    assert view["current_step"]["name"] == "await_disable_propagation"
    assert view["pending_decision"]["kind"] == "propagation_wait"
    assert "after the maximum wait (0.25 days)" in view["pending_decision"]["reason"]
    assert [w["outcome"] for w in view["propagation"]] == ["timed_out"]
    assert [s["status"] for s in view["servers"]] == ["pending", "pending"]

    # The operator accepts the offline clients; the rotation finishes.
    await e2e.supervisor.start_service("client-monitor")

    async def proceed(reason: str) -> None:
        async def decided() -> bool:
            # A proceed names the clients it accepts: until the restarted monitor has scanned
            # the fleet again the API answers 502 "try again shortly", and the operator does.
            answer = await e2e.api.post(
                f"/v1/rotations/{rotation_id}/decide",
                json={"decision": "proceed", "reason": reason},
            )
            if answer.status_code == 502:
                assert answer.json()["code"] == "client_monitor_unavailable", answer.text
                return False
            assert answer.status_code == 200, answer.text
            return True

        await until(decided, timeout=60, interval=1.0, what="the decision to be recorded")

    await proceed("offline laptops get a CUP on return")
    # After the swap the offline clients cannot take the verification-on policy either: the
    # second wait ends at its deadline too, and asks again.
    view = await e2e.wait_for(
        rotation_id, lambda v: v["state"] != "running", timeout=60, what="the second pause"
    )
    assert view["state"] == "paused", view["reason"]
    assert view["pending_decision"]["kind"] == "after_swap_wait"
    # (Its deadline timer and the monitor's stall report race; either says so.) After the swap
    # there is no abort: the only ways are to wait longer or go on.
    assert view["pending_decision"]["options"] == ["extend", "proceed"]
    await proceed("same 4 laptops as accepted before the swap")
    view = await e2e.wait_terminal(rotation_id, timeout=120)
    assert view["state"] == "completed", view["reason"]
    assert view["gates"]["orphan_risk"]["accepted"]["accepted_count"] == 4
    assert (await e2e.twin.orphans())["count"] == 0  # the offline ones have not noticed yet
    topology = await e2e.twin.topology()
    [site] = [s for s in topology["sites"] if s["name"] == "site-a"]
    for server in site["servers"]:
        assert {fp.lower() for fp in (await tls_fingerprints(server)).values()} == {new_fp}
