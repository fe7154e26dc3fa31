"""Approvals and decisions over the API are on the record with the approver's token id
(the refusal of self-approval is tested in test_api_approval.py)."""

from __future__ import annotations

import pytest

from tests.integration.orchestrator.support import rotation_body, wait_until
from tests.integration.orchestrator.test_liveness import view_of

pytestmark = pytest.mark.integration


async def test_the_approval_and_a_decision_keep_the_approvers_token_id_in_the_history(
    embedded,
):
    env = embedded
    made = {}
    for name in ("lead-a", "lead-b"):
        token = await env.api.post("/v1/tokens", json={"name": name, "role": "approver"})
        assert token.status_code == 201, token.text
        made[name] = token.json()
    async with env.client(made["lead-a"]["token"]) as lead_a:
        created = await lead_a.post("/v1/rotations", json=rotation_body(require_approval=True))
        assert created.status_code == 201, created.text
        rotation_id = created.json()["id"]

        async def at_the_gate() -> bool:
            return (await view_of(env, rotation_id))["gates"]["waiting_for"] == ["approval"]

        await wait_until(at_the_gate)
    async with env.client(made["lead-b"]["token"]) as lead_b:
        approved = await lead_b.post(
            f"/v1/rotations/{rotation_id}/approve", json={"note": "CAB-7 approved"}
        )
        assert approved.status_code == 200, approved.text
    events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    [approval] = [e for e in events if e["type"] == "ApprovalGiven"]
    assert approval["actor"] == "lead-b"
    assert approval["detail"]["principal"] == made["lead-b"]["id"]
    assert approval["detail"]["note"] == "CAB-7 approved"
    view = await view_of(env, rotation_id)
    assert view["gates"]["approval"]["approved_by"] == "lead-b"
