"""The approver cannot be bypassed: an orphan-risk budget needs the approver role (or stays
within the server's limit), is kept on the record, and nobody approves their own rotation."""

from __future__ import annotations

import pytest

from tests.integration.orchestrator.support import rotation_body

pytestmark = pytest.mark.integration


async def token(env, name: str, role: str) -> tuple[str, str]:
    made = await env.api.post("/v1/tokens", json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    return made.json()["token"], made.json()["id"]


def with_budget(budget: int, **options) -> dict:
    body = rotation_body(orphan_risk_budget=budget, **options)
    body["orphan_risk_budget_reason"] = "two lab laptops, re-imaged on return"
    return body


async def test_an_operator_needs_the_approver_to_accept_clients_at_creation(embedded):
    env = embedded
    operator, _ = await token(env, "op", "operator")
    approver, _ = await token(env, "boss", "approver")
    async with env.client(operator) as client:
        refused = await client.post("/v1/rotations", json=with_budget(3))
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "approver_required"
        assert "approver role" in refused.json()["detail"]
    assert (await env.api.get("/v1/rotations")).json()["items"] == []
    async with env.client(approver) as client:
        created = await client.post("/v1/rotations", json=with_budget(3))
    assert created.status_code == 201, created.text
    assert created.json()["gates"]["orphan_risk"]["budget"] == 3


async def test_the_budget_reason_and_the_token_are_kept_in_the_history(embedded):
    env = embedded
    approver, approver_id = await token(env, "boss", "approver")
    async with env.client(approver) as client:
        created = await client.post("/v1/rotations", json=with_budget(3))
    assert created.status_code == 201, created.text
    events = (await env.api.get(f"/v1/rotations/{created.json()['id']}/events")).json()["items"]
    requested = next(e for e in events if e["type"] == "RotationRequested")
    assert (
        requested["detail"]["orphan_risk_budget_reason"] == "two lab laptops, re-imaged on return"
    )
    assert requested["detail"]["principal"] == {"token_id": approver_id, "name": "boss",
                                                "role": "approver"}  # fmt: skip


async def test_server_settings_cap_the_budget_and_can_force_approval(embedded):
    env = embedded
    settings = env.runtime.settings
    settings.max_orphan_risk_budget = 5
    settings.operator_orphan_risk_budget = 2
    settings.require_approval = True
    over = await env.api.post("/v1/rotations", json=with_budget(6))
    assert over.status_code == 422 and over.json()["code"] == "budget_above_maximum"
    operator, _ = await token(env, "op", "operator")
    async with env.client(operator) as client:
        within = await client.post("/v1/rotations", json=with_budget(2, require_approval=False))
    assert within.status_code == 201, within.text
    assert within.json()["gates"]["approval"]["required"] is True


async def test_nobody_approves_their_own_rotation(embedded):
    env = embedded
    env.worker.propagate = False
    mine, _ = await token(env, "approver-1", "approver")
    other, _ = await token(env, "approver-2", "approver")
    async with env.client(mine) as client:
        rotation_id = (
            await client.post("/v1/rotations", json=rotation_body(require_approval=True))
        ).json()["id"]
        own = await client.post(f"/v1/rotations/{rotation_id}/approve", json={})
        assert own.status_code == 403 and own.json()["code"] == "self_approval"
    async with env.client(other) as client:
        approved = await client.post(f"/v1/rotations/{rotation_id}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert approved.json()["gates"]["approval"]["approved_by"] == "approver-2"
