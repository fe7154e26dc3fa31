"""A rotation of site A (two management servers, replicating with site B), each service in its
own OS process over Kafka and PostgreSQL, against the twin in its own process."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from certrotate_shared.metrics import sample_sum
from tests.e2e.conftest import MakeWorld
from tests.e2e.support import (
    E2E,
    TERMINAL,
    assert_site_rotated,
    lower,
    scenario,
    site_servers,
    tls_fingerprints,
)

pytestmark = pytest.mark.e2e


async def test_a_site_with_two_servers_and_a_partner_rotates_without_orphaning_anyone(
    world: MakeWorld,
) -> None:
    e2e = await world(scenario())
    await e2e.register()
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    rotation_id, new_fp = await e2e.rotate()

    await assert_site_rotated(e2e, rotation_id, new_fp, before)
    await assert_each_process_reports_the_rotation(e2e, rotation_id)


async def assert_each_process_reports_the_rotation(e2e: E2E, rotation_id: str) -> None:
    """Each service's own /metrics counts its part, and its log (JSON lines, as a log pipeline
    reads them) names the rotation: one rotation followed across four processes."""
    token = e2e.supervisor.config.internal_token
    scrapes = {}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for name in e2e.supervisor.services:
            response = await http.get(f"{e2e.supervisor.url(name)}/metrics")
            assert response.status_code == 200, (name, response.text)
            scrapes[name] = response.text
    assert sample_sum(scrapes["orchestrator"], "certrotate_rotations", state="completed") == 1
    assert (
        sample_sum(
            scrapes["replication"], "certrotate_messages_handled_total", type="BreakReplication"
        )
        == 1
    )
    assert (
        sample_sum(
            scrapes["certificates"],
            "certrotate_host_operations_total",
            kind="install_certificate",
            driver="twin",
            outcome="ok",
        )
        == 2
    )
    assert (
        sample_sum(scrapes["client-monitor"], "certrotate_sepm_requests_total", site="site-a") > 0
    )
    # A process counts only what it did: the orchestrator never calls SEPM.
    assert sample_sum(scrapes["orchestrator"], "certrotate_sepm_requests_total") == 0
    for name, service in e2e.supervisor.services.items():
        lines = [
            json.loads(line)
            for line in service.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        assert lines, f"{name} wrote no JSON log line"
        about = [line for line in lines if line.get("rotation_id") == rotation_id]
        assert about, f"no line of {name} names rotation {rotation_id}"
        assert all(line["service"] == name for line in lines)


async def test_clients_offline_through_the_wait_stop_the_saga_and_exactly_they_are_orphaned(
    world: MakeWorld,
) -> None:
    # 2% of the 500 workstations went offline just before the rotation, for 60 days.
    e2e = await world(scenario(clients=500, offline={"fraction": 0.02, "days": 60}))
    await e2e.register()
    offline = sorted(
        c["uniqueId"] for c in await e2e.twin.computers("site-a") if c["onlineStatus"] == 0
    )
    assert len(offline) == 10
    now_ms = (await e2e.twin.get("/clock"))["now_ms"]
    # They stay away through the whole rotation (a few simulated days). Not 59 days: at 3,600x a
    # loaded machine can spend a real minute (2.5 simulated days) getting here.
    for client in [await e2e.twin.get(f"/clients/{unique_id}") for unique_id in offline]:
        assert not client["online"] and client["offline_until_ms"] > now_ms + 30 * 86_400_000
    rotation_id, new_fp = await e2e.rotate(
        options={"propagation_threshold": 0.98, "stale_horizon_days": 30}
    )

    # The wait is over (98% reached), but the gate stops the saga before the swap.
    view = await e2e.wait_for(
        rotation_id, lambda v: v["state"] == "paused" or v["state"] in TERMINAL, what="the gate"
    )
    assert view["state"] == "paused"
    assert view["current_step"]["name"] == "gates"
    decision = view["pending_decision"]
    assert decision["kind"] == "orphan_risk"
    assert "10 clients would be cut off" in decision["reason"]
    assert view["gates"]["orphan_risk"]["at_risk"] == 10
    assert [s["status"] for s in view["servers"]] == ["pending", "pending"]
    at_risk = (await e2e.api.get(f"/v1/rotations/{rotation_id}/at-risk")).json()
    listed = sorted(c["uniqueId"] for c in at_risk["clients"])
    assert listed == offline

    # A change-board member with the approver role accepts the risk, with a reason.
    token = (
        await e2e.api.post("/v1/tokens", json={"name": "change-board", "role": "approver"})
    ).json()["token"]
    decided = await e2e.api.post(
        f"/v1/rotations/{rotation_id}/decide",
        json={
            "decision": "proceed",
            "reason": "laptops on leave; re-enrol with a CUP",
            "change_id": "CHG-42",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert decided.status_code == 200, decided.text
    view = await e2e.wait_terminal(rotation_id)
    assert view["state"] == "completed", view["reason"]
    assert view["gates"]["orphan_risk"]["accepted"]["by"] == "change-board"
    assert view["gates"]["orphan_risk"]["accepted"]["accepted_count"] == 10
    for server in await site_servers(e2e):
        assert set(lower(await tls_fingerprints(server)).values()) == {new_fp}
    assert (await e2e.twin.orphans())["count"] == 0  # still offline: nobody noticed yet

    # Two months later the laptops come back: exactly those are cut off, nobody else.
    await e2e.twin.post("/clock/advance", {"seconds": 61 * 86400})
    orphans = await e2e.twin.orphans()
    assert sorted(orphans["client_ids"]) == offline
    assert orphans["by_site"] == {"site-a": 10, "site-b": 0}
    # ...and the rotation's history names them as the accepted risk.
    events = await e2e.events(rotation_id)
    accepted = [e for e in events if (e.get("detail") or {}).get("accepted_list")]
    assert len(accepted) == 1
    reference = accepted[0]["detail"]["accepted_list"]
    export = await e2e.api.get(
        f"/v1/rotations/{rotation_id}/accepted-clients", params={"format": "jsonl"}
    )
    named = sorted(json.loads(line)["uniqueId"] for line in export.text.splitlines())
    assert named == offline and reference["count"] == len(offline)
    assert hashlib.sha256(export.content).hexdigest() == reference["sha256"]


async def test_a_failed_install_on_the_second_server_rolls_the_first_back(
    world: MakeWorld,
) -> None:
    fault = {
        "kind": "install_failure",
        "server": "sepm-a2",
        "message": "Failed to write the keystore: disk full",
    }
    e2e = await world(scenario(faults=[fault]))
    await e2e.register()
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    rotation_id, _ = await e2e.rotate()

    view = await e2e.wait_terminal(rotation_id)

    assert view["state"] == "compensated"
    assert "sepm-a2" in view["reason"] and "disk full" in view["reason"], view["reason"]
    reported = {s["name"]: s["status"] for s in view["servers"]}
    # The first server is rolled back; the second still serves its own certificate (the failed
    # install changed nothing there), so its "rollback" only verifies that.
    assert reported == {"sepm-a1": "rolled_back", "sepm-a2": "rolled_back"}
    restores = [
        op["target"]
        for op in await e2e.twin.operations()
        if op["operation"] == "certificate.restore"
    ]
    assert restores == ["sepm-a1"]
    for server in await site_servers(e2e):
        old = before[server["name"]]
        ports = await tls_fingerprints(server)
        assert lower(ports) == dict.fromkeys(ports, old), server["name"]
        assert lower(server["served_fingerprints"]) == dict.fromkeys(ports, old)
    assert all((await e2e.twin.verification_settings("site-a")).values())
    # The twin replicates every clock hour (a real second here) for a clock minute: a single
    # read lands in a scheduled run one time in sixty and sees PROCESSING.
    assert await e2e.twin.settled_replication("site-a") == {"site-b": "SUCCEEDED"}
    assert (await e2e.twin.orphans())["count"] == 0
