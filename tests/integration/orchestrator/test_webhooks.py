"""Signed webhook triggers: a certificate-lifecycle system starts rotations.

Deliveries are signed by the `standardwebhooks` library (the reference implementation), as a
real sender would sign them. The orchestrator runs embedded (SQLite, in-process bus) with
stand-in workers; tests/integration/orchestrator/webhook_support.py says what they fake."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certrotate_shared.messages.certificates import UpdateServerCertificate
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from tests.integration.orchestrator.harness import fingerprint_of
from tests.integration.orchestrator.support import wait_until
from tests.integration.orchestrator.webhook_support import (
    Hooks,
    signed,
    started_hooks,
    trigger_payload,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def hooks(tmp_path, master_key) -> AsyncIterator[Hooks]:
    async for env in started_hooks(tmp_path, master_key):
        yield env


async def deliver(env: Hooks, source: str, body: bytes, headers: dict[str, str]):
    async with env.client() as anonymous:
        return await anonymous.post(f"/v1/webhooks/{source}", content=body, headers=headers)


async def until_state(env: Hooks, rotation_id: str, *states: str) -> dict:
    async def reached() -> bool:
        return (await env.rotation(rotation_id))["state"] in states

    await wait_until(reached)
    return await env.rotation(rotation_id)


async def test_a_signed_trigger_starts_a_rotation_and_a_retried_delivery_gets_the_same_answer(
    hooks,
):
    env = hooks
    secret = await env.add_source("pki")
    assert secret.startswith("whsec_")
    # The secret is shown once: never again in the source's view.
    listed = (await env.api.get("/v1/webhooks/sources")).json()
    assert secret not in json.dumps(listed)
    assert [s["active"] for s in listed["items"][0]["secrets"]] == [True]

    body, headers = signed(secret, trigger_payload(servers=None))
    first = await deliver(env, "pki", body, headers)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["outcome"] == "started" and answer["change_id"] == "CHG0042"
    rotation_id = answer["rotation_id"]
    view = await until_state(env, rotation_id, "completed")
    assert view["requested_by"] == "webhook:pki"
    assert view["certificate"]["fingerprint_sha256"] == fingerprint_of("Q0VSVC1PTkU=")

    # The sender retries (it never saw our answer): same webhook-id, re-signed later.
    _, again_headers = signed(secret, body, msg_id=headers["webhook-id"])
    again = await deliver(env, "pki", body, again_headers)
    assert (again.status_code, again.json()) == (201, answer)
    # A new delivery of the certificate already rolled out names the same rotation.
    by_servers = trigger_payload()
    del by_servers["site"]
    by_servers["servers"] = ["sepm-a1", "sepm-a2"]
    body2, headers2 = signed(secret, by_servers)
    same = await deliver(env, "pki", body2, headers2)
    assert same.status_code == 200, same.text
    assert same.json()["outcome"] == "duplicate" and same.json()["rotation_id"] == rotation_id
    assert await env.rotations() == 1
    # The uploaded copy of the duplicate was dropped from the certificates store.
    assert len(env.certificates.state.bundles) == 1


async def test_rejected_deliveries_get_problem_json_and_leave_nothing_behind(hooks):
    env = hooks
    secret = await env.add_source("pki")
    other = await env.add_source("ca")
    body, headers = signed(secret, trigger_payload())

    unknown = await deliver(env, "nobody", body, headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_source"

    forged = await deliver(env, "ca", body, headers)  # signed with pki's secret
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
    assert forged.headers["content-type"] == "application/problem+json"

    tampered = body.replace(b"CHG0042", b"CHG9999")
    changed = await deliver(env, "pki", tampered, headers)
    assert changed.status_code == 401 and changed.json()["code"] == "bad_signature"

    old_body, old_headers = signed(
        secret, trigger_payload(), at=datetime.now(UTC) - timedelta(minutes=6)
    )
    stale = await deliver(env, "pki", old_body, old_headers)
    assert stale.status_code == 401 and stale.json()["code"] == "stale_timestamp"

    unsigned = await deliver(env, "pki", body, {"content-type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "signature_missing"

    bad_cert_body, bad_cert_headers = signed(
        secret, trigger_payload(certificate={"format": "pkcs12", "data_b64": "AAAA",
                                             "password": "wrong"})
    )  # fmt: skip
    bad_cert = await deliver(env, "pki", bad_cert_body, bad_cert_headers)
    assert bad_cert.status_code == 422 and bad_cert.json()["code"] == "wrong_password"

    junk_body, junk_headers = signed(secret, {"site": "site-a", "certificate": {"format": "zip"}})
    junk = await deliver(env, "pki", junk_body, junk_headers)
    assert junk.status_code == 422 and junk.json()["code"] == "invalid_payload"
    assert "pfx-pass" not in junk.text

    both_body, both_headers = signed(secret, trigger_payload(servers=["sepm-a1"]))
    both = await deliver(env, "pki", both_body, both_headers)
    assert both.status_code == 422

    ghost_body, ghost_headers = signed(secret, {**trigger_payload(site=None),
                                                "servers": ["sepm-z9"]})  # fmt: skip
    ghost = await deliver(env, "pki", ghost_body, ghost_headers)
    assert ghost.status_code == 422 and ghost.json()["code"] == "unknown_server"

    assert await env.rotations() == 0
    assert await env.deliveries() == 0
    assert other != secret


async def test_a_rolled_secret_keeps_the_old_one_valid_until_it_expires(hooks):
    env = hooks
    old = await env.add_source("pki")
    rolled = await env.api.post("/v1/webhooks/sources/pki/secrets", json={"keep_old_hours": 1})
    assert rolled.status_code == 201, rolled.text
    new = rolled.json()["secret"]["secret"]
    assert new != old and [s["active"] for s in rolled.json()["secrets"]] == [True, True]

    for secret, data in ((old, "T0xE"), (new, "TkVX")):
        body, headers = signed(secret, trigger_payload(data, change_id=f"CHG-{data}"))
        response = await deliver(env, "pki", body, headers)
        assert response.status_code in (200, 201), response.text
        await until_state(env, response.json()["rotation_id"], "completed")

    env.clock.advance(2 * 3600)
    body, headers = signed(old, trigger_payload("VEhJUkQ="))
    assert (await deliver(env, "pki", body, headers)).status_code == 401
    body, headers = signed(new, trigger_payload("VEhJUkQ="))
    accepted = await deliver(env, "pki", body, headers)
    assert accepted.status_code == 201, accepted.text
    source = (await env.api.get("/v1/webhooks/sources/pki")).json()
    assert [s["active"] for s in source["secrets"]] == [False, True]

    # Revoking the remaining secret, then removing the source: nothing is accepted any more.
    revoke = await env.api.delete(f"/v1/webhooks/sources/pki/secrets/{source['secrets'][1]['id']}")
    assert revoke.status_code == 204
    body, headers = signed(new, trigger_payload("Rk9VUlRI"))
    assert (await deliver(env, "pki", body, headers)).status_code == 401
    assert (await env.api.delete("/v1/webhooks/sources/pki")).status_code == 204
    assert (await deliver(env, "pki", body, headers)).status_code == 404


async def test_only_admins_manage_sources(hooks):
    env = hooks
    made = await env.api.post("/v1/tokens", json={"name": "op", "role": "operator"})
    async with env.client(made.json()["token"]) as operator:
        refused = await operator.post("/v1/webhooks/sources", json={"name": "pki"})
        assert refused.status_code == 403
        assert (await operator.get("/v1/webhooks/sources")).status_code == 403
    async with env.client() as anonymous:
        assert (await anonymous.get("/v1/webhooks/sources")).status_code == 401
    reserved = await env.api.post("/v1/webhooks/sources", json={"name": "sources"})
    assert reserved.status_code == 422
    await env.add_source("pki")
    twice = await env.api.post("/v1/webhooks/sources", json={"name": "pki"})
    assert twice.status_code == 409 and twice.json()["code"] == "source_exists"


async def test_the_payload_is_documented_in_openapi_with_an_example(hooks):
    document = (await hooks.api.get("/openapi.json")).json()
    operation = document["paths"]["/v1/webhooks/{source}"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/TriggerIn"}
    assert body["examples"]["inline"]["value"]["certificate"]["format"] == "pkcs12"
    schema = document["components"]["schemas"]["TriggerIn"]
    assert {"site", "servers", "certificate", "change_id", "options"} <= set(schema["properties"])
    assert {"401", "404", "409", "422"} <= set(operation["responses"])
    # Every reference in the document resolves.
    text = json.dumps(document)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in document["components"]["schemas"], name


@pytest.fixture(params=["sqlite", "postgres"])
async def slow_propagation(
    request, tmp_path, master_key, pg_url, pg_schemas
) -> AsyncIterator[Hooks]:
    """On SQLite, or on PostgreSQL (where the waits are read with asyncpg's statements)."""
    database: dict[str, Any] = {}
    if request.param == "postgres":
        schema = f"orch_{uuid.uuid4().hex[:8]}"
        pg_schemas.append(schema)
        database = {"database_url": pg_url, "database_schema": schema}
    async for env in started_hooks(tmp_path, master_key, propagate=False, **database):
        yield env


async def test_a_newer_certificate_supersedes_a_rotation_that_has_not_begun_the_swap(
    slow_propagation,
):
    env = slow_propagation
    secret = await env.add_source("pki")
    body, headers = signed(secret, trigger_payload("Rk9STUVS", change_id="CHG-1"))
    first = (await deliver(env, "pki", body, headers)).json()
    await env.worker.wait_for(AwaitPolicyPropagation)
    old_id = first["rotation_id"]
    assert (await env.rotation(old_id))["current_step"]["name"] == "await_disable_propagation"

    body, headers = signed(secret, trigger_payload("TkVXRVI=", change_id="CHG-2"))
    newer = await deliver(env, "pki", body, headers)
    assert newer.status_code == 201, newer.text
    assert newer.json()["outcome"] == "superseded"
    assert newer.json()["superseded_rotation_id"] == old_id
    new_id = newer.json()["rotation_id"]
    # The new rotation waits, touching nothing, while the old one puts the site back.
    held = await env.rotation(new_id)
    assert held["state"] == "paused"
    assert held["hold"]["paused"] and old_id in held["hold"]["reason"]

    env.worker.propagate = True  # the restored policy reaches the clients
    old = await until_state(env, old_id, "compensated")
    assert f"superseded by rotation {new_id}" in old["reason"]
    new = await until_state(env, new_id, "completed")
    assert new["change_id"] == "CHG-2"
    old_events = (await env.api.get(f"/v1/rotations/{old_id}/events")).json()["items"]
    cancel = next(e for e in old_events if e["type"] == "CancelRequested")
    assert cancel["actor"] == "webhook:pki"
    new_events = (await env.api.get(f"/v1/rotations/{new_id}/events")).json()["items"]
    assert [e["type"] for e in new_events if e["kind"] == "operator"] == [
        "RotationRequested",
        "ResumeRequested",
    ]
    # The new rotation sent its first command only after the old one had compensated.
    inspected = [e for e in new_events if e["type"] == "InspectSite"]
    assert inspected and inspected[0]["at"] >= old["updated_at"]


@pytest.fixture
async def stuck_swap(tmp_path, master_key) -> AsyncIterator[Hooks]:
    async for env in started_hooks(
        tmp_path, master_key, withhold=lambda m: isinstance(m, UpdateServerCertificate)
    ):
        yield env


async def test_a_newer_certificate_is_refused_once_the_swap_has_begun(stuck_swap):
    env = stuck_swap
    secret = await env.add_source("pki")
    body, headers = signed(secret, trigger_payload("Rk9STUVS"))
    running = (await deliver(env, "pki", body, headers)).json()["rotation_id"]
    await env.worker.wait_for(UpdateServerCertificate)

    body, headers = signed(secret, trigger_payload("TkVXRVI="))
    refused = await deliver(env, "pki", body, headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "site_busy"
    assert refused.json()["rotation_id"] == running
    assert await env.rotations() == 1 and await env.deliveries() == 1
    assert (await env.rotation(running))["state"] == "running"
    # The refused certificate is not left behind in the certificates store.
    assert list(env.certificates.state.bundles.values()) == ["Rk9STUVS"]


async def test_the_same_delivery_sent_twice_at_once_starts_one_rotation(hooks):
    env = hooks
    secret = await env.add_source("pki")
    body, headers = signed(secret, trigger_payload())
    first, second = await asyncio.gather(
        deliver(env, "pki", body, headers), deliver(env, "pki", body, headers)
    )
    assert (first.status_code, first.json()) == (second.status_code, second.json()), (
        first.text,
        second.text,
    )
    assert first.status_code == 201
    assert await env.rotations() == 1 and await env.deliveries() == 1
    # Only the rotation's own copy of the certificate is left in the store.
    assert len(env.certificates.state.bundles) == 1
