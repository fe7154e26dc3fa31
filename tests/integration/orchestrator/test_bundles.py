"""A certificate bundle uploaded once (POST /v1/bundles) and named by id: by a signed webhook
trigger (signed with the `standardwebhooks` reference library), by POST /v1/rotations and by a
campaign. Each use is pre-flighted again for its own site and gets a copy of its own; the key
and the password never come back. webhook_support.py says what the certificates stand-in fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from orchestrator.adapters.bundle_tables import uploaded_bundles
from tests.integration.orchestrator.harness import fingerprint_of
from tests.integration.orchestrator.support import wait_until
from tests.integration.orchestrator.webhook_support import (
    Hooks,
    signed,
    started_hooks,
)

pytestmark = pytest.mark.integration

KEYSTORE = "S0VZU1RPUkUtT05DRQ=="
PASSWORD = "pfx-pass-never-echoed"


@pytest.fixture
async def hooks(tmp_path, master_key) -> AsyncIterator[Hooks]:
    async for env in started_hooks(tmp_path, master_key):
        yield env


async def upload(env: Hooks, **fields: object) -> dict:
    body = {"format": "pkcs12", "data_b64": KEYSTORE, "password": PASSWORD, **fields}
    response = await env.api.post("/v1/bundles", json=body)
    assert response.status_code == 201, response.text
    assert PASSWORD not in response.text and KEYSTORE not in response.text
    return dict(response.json())


async def until_state(env: Hooks, rotation_id: str, *states: str) -> dict:
    async def reached() -> bool:
        return (await env.rotation(rotation_id))["state"] in states

    await wait_until(reached)
    return await env.rotation(rotation_id)


async def test_an_uploaded_bundle_is_described_never_shown(hooks):
    env = hooks
    bundle = await upload(env, site="site-a", description="2026 renewal")
    assert bundle["id"] and bundle["fingerprint_sha256"] == fingerprint_of(KEYSTORE)
    # Checked for site-a's names at upload.
    assert bundle["sans"] == ["sepm-a1.corp", "sepm-a2.corp"]
    assert bundle["uploaded_by"] == "admin" and bundle["site"] == "site-a"
    listed = await env.api.get("/v1/bundles")
    assert [b["id"] for b in listed.json()["items"]] == [bundle["id"]]
    one = await env.api.get(f"/v1/bundles/{bundle['id']}")
    assert one.json() == bundle
    assert PASSWORD not in listed.text + one.text
    missing = await env.api.get("/v1/bundles/bnd_nope")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_bundle"

    # Pre-flight refuses with its own code, and nothing is kept.
    refused = await env.api.post(
        "/v1/bundles", json={"format": "pkcs12", "data_b64": KEYSTORE, "password": "wrong"}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "wrong_password"
    assert await env.count(uploaded_bundles) == 1
    async with env.client() as anonymous:
        assert (await anonymous.get("/v1/bundles")).status_code == 401


async def test_a_signed_trigger_names_an_uploaded_bundle_instead_of_carrying_the_keystore(hooks):
    env = hooks
    bundle = await upload(env)
    secret = await env.add_source("pki")
    payload = {"servers": ["sepm-a1", "sepm-a2"], "bundle_id": bundle["id"], "change_id": "CHG7"}
    body, headers = signed(secret, payload)
    async with env.client() as sender:
        first = await sender.post("/v1/webhooks/pki", content=body, headers=headers)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["outcome"] == "started"
    assert answer["certificate_fingerprint_sha256"] == bundle["fingerprint_sha256"]
    rotation = await until_state(env, answer["rotation_id"], "completed")
    assert rotation["certificate"]["fingerprint_sha256"] == bundle["fingerprint_sha256"]
    # Pre-flighted again for the site the trigger resolved to, with that site's names.
    assert env.certificates.state.uses == [
        (bundle["id"], "site-a", ["sepm-a1.corp", "sepm-a2.corp"])
    ]
    # The rotation used its own copy: the uploaded bundle outlives the rotation's purge.
    assert bundle["id"] in env.certificates.state.bundles

    # A retried delivery gets the same answer; the same bundle again names the same rotation.
    _, again = signed(secret, body, msg_id=headers["webhook-id"])
    async with env.client() as sender:
        retried = await sender.post("/v1/webhooks/pki", content=body, headers=again)
        assert (retried.status_code, retried.json()) == (201, answer)
        body2, headers2 = signed(secret, payload)
        same = await sender.post("/v1/webhooks/pki", content=body2, headers=headers2)
    assert same.status_code == 200 and same.json()["outcome"] == "duplicate"
    assert same.json()["rotation_id"] == answer["rotation_id"]
    assert await env.rotations() == 1
    assert bundle["id"] in env.certificates.state.bundles

    # A bundle nobody uploaded: 422 with a code, and nothing is stored for the delivery.
    kept = await env.deliveries()
    body3, headers3 = signed(secret, {**payload, "bundle_id": "bnd_unknown"})
    async with env.client() as sender:
        unknown = await sender.post("/v1/webhooks/pki", content=body3, headers=headers3)
        both = {**payload, "certificate": {"format": "pem", "data_b64": "QQ=="}}
        body4, headers4 = signed(secret, both)
        ambiguous = await sender.post("/v1/webhooks/pki", content=body4, headers=headers4)
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_bundle"
    assert ambiguous.status_code == 422 and ambiguous.json()["code"] == "invalid_payload"
    assert await env.deliveries() == kept


async def test_rotations_and_campaigns_name_an_uploaded_bundle(hooks):
    env = hooks
    bundle = await upload(env)
    created = await env.api.post(
        "/v1/rotations", json={"site": "site-a", "bundle_id": bundle["id"], "change_id": "CHG8"}
    )
    assert created.status_code == 201, created.text
    rotation = await until_state(env, created.json()["id"], "completed")
    assert rotation["certificate"]["fingerprint_sha256"] == bundle["fingerprint_sha256"]

    unknown = await env.api.post("/v1/rotations", json={"site": "site-a", "bundle_id": "bnd_x"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_bundle"
    neither = await env.api.post("/v1/rotations", json={"site": "site-a"})
    assert neither.status_code == 422
    assert await env.rotations() == 1

    campaign = await env.api.post(
        "/v1/campaigns",
        json={"name": "renewal", "plan": {"waves": [["site-a"]]},
              "certificate": {"bundle_id": bundle["id"]}},
    )  # fmt: skip
    assert campaign.status_code == 201, campaign.text
    sites = [env.certificates.state.uses[i][1] for i in range(len(env.certificates.state.uses))]
    assert sites == ["site-a", "site-a"]


async def test_the_trigger_payload_documents_the_bundle_reference(hooks):
    document = (await hooks.api.get("/openapi.json")).json()
    content = document["paths"]["/v1/webhooks/{source}"]["post"]["requestBody"]["content"]
    examples = content["application/json"]["examples"]
    assert examples["bundle"]["value"]["bundle_id"].startswith("bnd_")
    assert "certificate" not in examples["bundle"]["value"]
    schema = document["components"]["schemas"]["TriggerIn"]
    assert "bundle_id" in schema["properties"]
    assert "/v1/bundles" in document["paths"]
    assert "password" not in json.dumps(document["components"]["schemas"]["BundleOut"])


async def test_an_uploaded_bundle_is_destroyed_on_request_and_can_no_longer_be_named(hooks):
    env = hooks
    bundle = await upload(env)
    used = await env.api.post("/v1/rotations", json={"site": "site-a", "bundle_id": bundle["id"]})
    assert used.status_code == 201, used.text
    (own_copy,) = set(env.certificates.state.bundles) - {bundle["id"]}
    # A rotation's own copy is not an uploaded bundle: it cannot be destroyed through here.
    assert (await env.api.delete(f"/v1/bundles/{own_copy}")).status_code == 404

    assert (await env.api.delete(f"/v1/bundles/{bundle['id']}")).status_code == 204
    assert bundle["id"] not in env.certificates.state.bundles
    assert (await env.api.get(f"/v1/bundles/{bundle['id']}")).status_code == 404
    await until_state(env, used.json()["id"], "completed")  # its copy was its own
    again = await env.api.post("/v1/rotations", json={"site": "site-a", "bundle_id": bundle["id"]})
    assert again.status_code == 422 and again.json()["code"] == "unknown_bundle"
    audit = (await env.api.get("/v1/audit")).json()["items"]
    assert any(e["action"] == "bundle.deleted" and e["target"] == bundle["id"] for e in audit)
