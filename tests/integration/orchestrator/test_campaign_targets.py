"""Sites carry tags in the inventory; a campaign may target them by tag (resolved at creation)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.orchestrator.support import server_body, site_body
from tests.integration.orchestrator.test_campaigns import CERT, sites_of

pytestmark = pytest.mark.integration


async def register(env: Any, name: str, tags: list[str], partners: list[str] | None = None) -> None:
    body = {**site_body(name, partners), "tags": tags}
    created = await env.api.post("/v1/sites", json=body)
    assert created.status_code == 201, created.text
    server = await env.api.post("/v1/servers", json=server_body(f"{name}-s1", name))
    assert server.status_code == 201, server.text


async def test_tags_are_set_on_create_and_replaced_on_update(embedded):
    env = embedded
    await register(env, "emea-1", ["emea", "prod"])
    assert (await env.api.get("/v1/sites/emea-1")).json()["tags"] == ["emea", "prod"]
    replaced = await env.api.put("/v1/sites/emea-1", json={**site_body("emea-1"), "tags": ["emea"]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["tags"] == ["emea"]
    listed = {s["name"]: s["tags"] for s in (await env.api.get("/v1/sites")).json()["items"]}
    assert listed["emea-1"] == ["emea"]
    assert listed["site-a"] == []  # registered without tags
    bad = await env.api.post("/v1/sites", json={**site_body("x-1"), "tags": ["has space"]})
    assert bad.status_code == 422


async def test_a_campaign_by_tag_targets_the_sites_tagged_then_and_records_them(embedded):
    env = embedded
    for name, tags in (("emea-2", ["emea"]), ("emea-1", ["emea", "prod"]), ("apac-1", ["apac"])):
        await register(env, name, tags)
    body = {"name": "by-tag", "certificate": CERT, "plan": {"sites": ["tag:emea"], "canary": 1,
            "wave_size": 5}}  # fmt: skip
    created = await env.api.post("/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    view = created.json()
    assert [[s["site"] for s in w["sites"]] for w in view["plan"]] == [["emea-1"], ["emea-2"]]
    assert view["targets"]["tags"] == {"emea": ["emea-1", "emea-2"]}
    assert view["targets"]["plan"]["sites"] == ["tag:emea"]
    (resolved,) = [e for e in view["events"] if e["type"] == "TargetsResolved"]
    assert resolved["tags"] == {"emea": ["emea-1", "emea-2"]}
    # A site tagged later is not swept into the running campaign.
    await register(env, "emea-3", ["emea"])
    again = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
    assert "emea-3" not in sites_of(again)


async def test_a_site_named_and_tagged_keeps_its_named_place(embedded):
    env = embedded
    for name in ("emea-1", "emea-2"):
        await register(env, name, ["emea"])
    body = {"name": "mixed", "certificate": CERT, "max_concurrent": 1,
            "plan": {"waves": [["emea-2"], ["tag:emea"]]}}  # fmt: skip
    view = (await env.api.post("/v1/campaigns", json=body)).json()
    assert [[s["site"] for s in w["sites"]] for w in view["plan"]] == [["emea-2"], ["emea-1"]]


async def test_a_tag_no_site_carries_is_refused_and_creates_nothing(embedded):
    env = embedded
    body = {"name": "typo", "certificate": CERT, "plan": {"waves": [["tag:emae"]]}}
    refused = await env.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "unknown_tag"
    assert "emae" in refused.json()["detail"]
    assert (await env.api.get("/v1/campaigns")).json()["items"] == []


async def test_tags_alone_are_set_without_resending_the_site_and_sites_list_by_tag(embedded):
    env = embedded
    await register(env, "emea-1", ["emea"])
    await register(env, "emea-2", ["emea", "prod"])
    before = (await env.api.get("/v1/sites/emea-1")).json()
    changed = await env.api.put("/v1/sites/emea-1/tags", json={"tags": ["prod", "emea"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["tags"] == ["emea", "prod"]
    after = (await env.api.get("/v1/sites/emea-1")).json()
    # Nothing else about the site moved (its trust set, driver, credentials).
    assert {k: v for k, v in after.items() if k not in ("tags", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("tags", "updated_at")
    }
    prod = (await env.api.get("/v1/sites", params={"tag": "prod"})).json()["items"]
    assert [s["name"] for s in prod] == ["emea-1", "emea-2"]
    audit = (await env.api.get("/v1/audit", params={"limit": 50})).json()["items"]
    assert any(a["action"] == "site.tags_set" and a["target"] == "emea-1" for a in audit)
    unknown = await env.api.put("/v1/sites/nowhere/tags", json={"tags": ["x"]})
    assert unknown.status_code == 404
    token = (await env.api.post("/v1/tokens", json={"name": "ops", "role": "operator"})).json()
    async with env.client(token["token"]) as operator:
        refused = await operator.put("/v1/sites/emea-1/tags", json={"tags": []})
    assert refused.status_code == 403
