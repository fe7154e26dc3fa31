"""A rotation that cut clients off beyond what an approver accepted halts the campaign."""

from __future__ import annotations

import pytest

from tests.integration.orchestrator.support import wait_until
from tests.integration.orchestrator.test_campaigns import (
    campaign_body,
    estate,
    sites_of,
    until_state,
)

pytestmark = pytest.mark.integration


async def test_clients_orphaned_outside_the_accepted_risk_halt_for_an_approver(embedded):
    env = embedded
    await estate(env)
    # Three clients are still at risk when the watch ends (threshold 90%); the approver's
    # "proceed" names the two the client-monitor lists: one is cut off outside that acceptance.
    env.worker.at_risk = 3
    body = campaign_body(
        {"waves": [["site-c", "site-d"]]}, max_failures=5,
        options={"propagation_threshold": 0.9},
    )  # fmt: skip
    view = (await env.api.post("/v1/campaigns", json=body)).json()
    first = sites_of(view)["site-c"]["rotation_id"]

    async def at_orphan_gate() -> bool:
        rotation = (await env.api.get(f"/v1/rotations/{first}")).json()
        return (rotation.get("pending_decision") or {}).get("kind") == "orphan_risk"

    await wait_until(at_orphan_gate)
    env.worker.at_risk = 0
    token = (await env.api.post("/v1/tokens", json={"name": "cab", "role": "approver"})).json()
    async with env.client(token["token"]) as approver:
        decided = await approver.post(
            f"/v1/rotations/{first}/decide",
            json={"decision": "proceed", "reason": "two kiosks, reinstalled after"},
        )
        assert decided.status_code == 200, decided.text
        # Halted as soon as the swap is done, not when the rotation ends days later.
        halted = await until_state(env, view["id"], "halted")
        assert halted["failures"] == 0  # not the failure budget (5): no rotation failed
        assert halted["decision_waiting"]["kind"] == "orphaned_clients"
        assert "site-c" in halted["decision_waiting"]["reason"]
        assert sites_of(halted)["site-c"]["orphaned_outside_risk"] == 1
        assert sites_of(halted)["site-d"]["status"] == "pending"
        (seen,) = [e for e in halted["events"] if e["type"] == "ClientsOrphaned"]
        assert seen["site"] == "site-c" and seen["clients"] == 1 and seen["accepted"] == 2

        async def first_done() -> bool:
            current = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
            return sites_of(current)["site-c"]["status"] == "completed"

        await wait_until(first_done)
        still = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
        assert still["state"] == "halted" and sites_of(still)["site-d"]["status"] == "pending"
        go_on = await approver.post(
            f"/v1/campaigns/{view['id']}/approve",
            json={"decision": "continue", "note": "the kiosk is reimaged"},
        )
        assert go_on.status_code == 200, go_on.text
    done = await until_state(env, view["id"], "completed")
    assert sites_of(done)["site-d"]["status"] == "completed"
    assert [e["decision"] for e in done["events"] if e["type"] == "DecisionMade"] == [
        "orphaned_clients"
    ]
