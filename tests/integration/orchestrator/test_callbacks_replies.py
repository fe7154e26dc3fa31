"""An ITSM tool approves a rotation by a signed reply to the callback that asked for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.orchestrator.callback_receiver import Receiver
from tests.integration.orchestrator.support import rotation_body, wait_until
from tests.integration.orchestrator.webhook_support import Hooks, signed, started_hooks

pytestmark = pytest.mark.integration


@pytest.fixture
async def hooks(tmp_path, master_key) -> AsyncIterator[Hooks]:
    async for env in started_hooks(
        tmp_path, master_key, callback_allowed_networks=["127.0.0.0/8"], callback_allow_http=True
    ):
        yield env


async def reply(env: Hooks, subscription_id: str, secret: str, payload: dict, **kw):
    body, headers = signed(secret, payload, **kw)
    async with env.client() as itsm:  # no API token: the signature is the credential
        response = await itsm.post(
            f"/v1/subscriptions/{subscription_id}/replies", content=body, headers=headers
        )
    return response, headers


async def test_a_signed_reply_approves_and_the_history_names_the_approver_and_change(hooks):
    env = hooks
    receiver = Receiver()
    await receiver.start()
    try:
        made = await env.api.post(
            "/v1/subscriptions",
            json={"url": receiver.url, "event_types": ["rotation.awaiting_approval"],
                  "change_id": "CHG0001", "may_approve": True},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        sub, receiver.secret = made.json()["id"], made.json()["secret"]
        rotation_id = (
            await env.api.post("/v1/rotations", json=rotation_body(require_approval=True))
        ).json()["id"]
        asked = (await receiver.wait_for(1))[0].payload
        assert asked["type"] == "rotation.awaiting_approval"
        assert asked["data"]["change_id"] == "CHG0001"

        approval = {"rotation_id": rotation_id, "decision": "approve", "approver": "jane.doe",
                    "change_id": "CHG0001", "note": "CAB approved"}  # fmt: skip
        wrong_change = await reply(env, sub, receiver.secret, {**approval, "change_id": "CHG9"})
        assert wrong_change[0].status_code == 409
        assert wrong_change[0].json()["code"] == "change_mismatch"
        forged = await reply(env, sub, "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", approval)
        assert forged[0].status_code == 401 and forged[0].json()["code"] == "bad_signature"

        ok, headers = await reply(env, sub, receiver.secret, approval)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"outcome": "approved", "rotation_id": rotation_id,
                             "approver": "jane.doe", "change_id": "CHG0001"}  # fmt: skip
        again, _ = await reply(env, sub, receiver.secret, approval, msg_id=headers["webhook-id"])
        assert (again.status_code, again.json()) == (200, ok.json())

        async def completed() -> bool:
            return (await env.rotation(rotation_id))["state"] == "completed"

        await wait_until(completed)
        view = await env.rotation(rotation_id)
        assert view["gates"]["approval"]["approved_by"] == "jane.doe"
        events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
        given = [e for e in events if e["type"] == "ApprovalGiven"]
        assert len(given) == 1 and given[0]["actor"] == "jane.doe"
        assert given[0]["detail"]["change_id"] == "CHG0001"
        assert sub in given[0]["detail"]["via"]
    finally:
        await receiver.stop()


async def test_replies_need_an_admins_permission_and_the_subscriptions_filter(hooks):
    env = hooks
    receiver = Receiver()
    plain = await env.api.post(
        "/v1/subscriptions", json={"url": receiver.url, "event_types": ["rotation.completed"]}
    )
    scoped = await env.api.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "event_types": ["rotation.completed"], "site": "site-z",
              "may_approve": True},
    )  # fmt: skip
    rotation_id = (
        await env.api.post("/v1/rotations", json=rotation_body(require_approval=True))
    ).json()["id"]
    approval = {"rotation_id": rotation_id, "decision": "approve", "approver": "eve",
                "change_id": "CHG0001"}  # fmt: skip
    refused, _ = await reply(env, plain.json()["id"], plain.json()["secret"], approval)
    assert refused.status_code == 403 and refused.json()["code"] == "replies_not_allowed"
    outside, _ = await reply(env, scoped.json()["id"], scoped.json()["secret"], approval)
    assert outside.status_code == 403 and outside.json()["code"] == "outside_subscription"
    junk, _ = await reply(env, scoped.json()["id"], scoped.json()["secret"], {"decision": "yes"})
    assert junk.status_code == 422
    assert (await env.rotation(rotation_id))["gates"]["approval"]["approved_by"] is None
