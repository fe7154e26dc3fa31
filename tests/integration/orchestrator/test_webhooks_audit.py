"""The audit log: who changed inventory, tokens, subscriptions and webhook sources, and when;
readable by admins and exported as JSON lines, never with a secret."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.integration.orchestrator.support import ADMIN, server_body, site_body
from tests.integration.orchestrator.webhook_support import Hooks, started_hooks

pytestmark = pytest.mark.integration


@pytest.fixture
async def hooks(tmp_path, master_key) -> AsyncIterator[Hooks]:
    async for env in started_hooks(
        tmp_path, master_key, callback_allowed_networks=["127.0.0.0/8"], callback_allow_http=True
    ):
        yield env


async def test_admin_changes_are_logged_with_who_and_what_and_no_secret(hooks):
    env = hooks
    made = await env.api.post("/v1/tokens", json={"name": "ops-lead", "role": "admin"})
    token, token_id = made.json()["token"], made.json()["id"]
    async with env.client(token) as lead:
        site = site_body("site-x")
        site["sepm_credentials"]["password"] = "pa55-never-logged"
        assert (await lead.post("/v1/sites", json=site)).status_code == 201
        assert (await lead.put("/v1/servers/sepm-x1",
                               json=server_body("sepm-x1", "site-x"))).status_code == 200  # fmt: skip
        assert (await lead.delete("/v1/servers/sepm-x1")).status_code == 204
        source = await lead.post("/v1/webhooks/sources", json={"name": "pki"})
        rolled = await lead.post("/v1/webhooks/sources/pki/secrets", json={"keep_old_hours": 0})
        sub = await lead.post(
            "/v1/subscriptions",
            json={"url": "http://127.0.0.1:9/hook?token=receiver-own-token",
                  "event_types": ["rotation.failed"]},
        )  # fmt: skip
        assert sub.status_code == 201, sub.text
        assert (await lead.delete(f"/v1/subscriptions/{sub.json()['id']}")).status_code == 204
    assert (await env.api.delete(f"/v1/tokens/{token_id}")).status_code == 204

    page = (await env.api.get("/v1/audit")).json()
    actions = [(e["actor"], e["action"], e["target"]) for e in page["items"]]
    # The fixture's own setup (admin) comes first: the site and servers of every test.
    assert actions[:3] == [
        ("admin", "site.created", "site-a"),
        ("admin", "server.created", "sepm-a1"),
        ("admin", "server.created", "sepm-a2"),
    ]
    assert actions[3:] == [
        ("admin", "token.created", token_id),
        ("ops-lead", "site.created", "site-x"),
        ("ops-lead", "server.replaced", "sepm-x1"),
        ("ops-lead", "server.deleted", "sepm-x1"),
        ("ops-lead", "webhook_source.created", "pki"),
        ("ops-lead", "webhook_source.secret_rolled", "pki"),
        ("ops-lead", "subscription.created", sub.json()["id"]),
        ("ops-lead", "subscription.deleted", sub.json()["id"]),
        ("admin", "token.revoked", token_id),
    ]
    by_action = {e["action"]: e for e in page["items"][3:]}
    assert by_action["site.created"]["detail"]["sepm_credentials_replaced"] is True
    assert by_action["token.created"]["detail"] == {
        "name": "ops-lead", "role": "admin", "expires_at": None
    }  # fmt: skip
    assert by_action["webhook_source.secret_rolled"]["detail"]["keep_old_hours"] == 0
    everything = json.dumps(page)
    for secret in ("pa55-never-logged", token, source.json()["secret"]["secret"],
                   rolled.json()["secret"]["secret"], sub.json()["secret"],
                   "receiver-own-token", ADMIN):  # fmt: skip
        assert secret not in everything

    exported = await env.api.get("/v1/audit/export", params={"action": "subscription."})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [e["action"] for e in lines] == ["subscription.created", "subscription.deleted"]
    later = await env.api.get("/v1/audit", params={"after": page["items"][-2]["id"]})
    assert [e["action"] for e in later.json()["items"]] == ["token.revoked"]


async def test_only_admins_read_the_audit_log(hooks):
    env = hooks
    made = await env.api.post("/v1/tokens", json={"name": "appr", "role": "approver"})
    async with env.client(made.json()["token"]) as approver:
        assert (await approver.get("/v1/audit")).status_code == 403
        assert (await approver.get("/v1/audit/export")).status_code == 403
    async with env.client() as anonymous:
        assert (await anonymous.get("/v1/audit")).status_code == 401
