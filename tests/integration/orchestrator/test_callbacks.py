"""Callbacks to subscribers: a real HTTP receiver on loopback verifies every callback with the
`standardwebhooks` library, through an outage and an orchestrator restart.

Loopback is refused by default (SSRF guard): these tests allow 127.0.0.0/8 and plain http in the
orchestrator's settings, as an admin would for an internal receiver."""

from __future__ import annotations

import functools
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from tests.integration.orchestrator.callback_receiver import Receiver
from tests.integration.orchestrator.support import rotation_body, wait_until
from tests.integration.orchestrator.webhook_support import Hooks, started_hooks
from tests.support.pki import TestCA

pytestmark = pytest.mark.integration

LOOPBACK: dict[str, Any] = {
    "callback_allowed_networks": ["127.0.0.0/8"],
    "callback_allow_http": True,
}
ALL = [
    "rotation.paused", "rotation.awaiting_approval", "rotation.completed",
    "rotation.compensated", "rotation.failed", "exposure.exceeded", "site.at_risk",
]  # fmt: skip


@pytest.fixture
async def hooks(tmp_path, master_key) -> AsyncIterator[Hooks]:
    async for env in started_hooks(tmp_path, master_key, **LOOPBACK):
        yield env


@pytest.fixture(params=["sqlite", "postgres"])
async def any_database(request, tmp_path, master_key, pg_url, pg_schemas) -> AsyncIterator[Hooks]:
    """The embedded orchestrator on SQLite, or on PostgreSQL (row locks, SKIP LOCKED)."""
    database: dict[str, Any] = {}
    if request.param == "postgres":
        schema = f"orch_{uuid.uuid4().hex[:8]}"
        pg_schemas.append(schema)
        database = {"database_url": pg_url, "database_schema": schema}
    async for env in started_hooks(tmp_path, master_key, **LOOPBACK, **database):
        yield env


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.stop()


async def subscribe(env: Hooks, receiver: Receiver, **fields) -> str:
    body = {"url": receiver.url, "event_types": ALL, **fields}
    response = await env.api.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    return str(response.json()["id"])


async def deliveries(env: Hooks, subscription_id: str) -> list[dict]:
    response = await env.api.get(f"/v1/subscriptions/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_callbacks_wait_out_an_outage_and_a_restart_and_arrive_signed_and_in_order(
    any_database, receiver
):
    env = any_database
    await receiver.start()
    port = receiver.port
    await receiver.stop()  # the ITSM tool is down from the start
    receiver.port = port
    sub = await subscribe(env, receiver, change_id="CHG0001")
    other = Receiver()
    await subscribe(env, other, site="site-other")  # hears about another site only

    created = await env.api.post("/v1/rotations", json=rotation_body(require_approval=True))
    rotation_id = created.json()["id"]

    async def awaiting_approval() -> bool:
        return bool(await deliveries(env, sub))

    await wait_until(awaiting_approval)
    # Another person approves (the requesting token may not approve its own rotation).
    approver = await env.api.post("/v1/tokens", json={"name": "cab", "role": "approver"})
    async with env.client(approver.json()["token"]) as cab:
        assert (await cab.post(f"/v1/rotations/{rotation_id}/approve", json={})).status_code == 200

    async def completed_and_tried() -> bool:
        items = await deliveries(env, sub)
        state = (await env.rotation(rotation_id))["state"]
        return state == "completed" and len(items) == 2 and items[0]["attempts"] >= 1

    await wait_until(completed_and_tried)
    queued = await deliveries(env, sub)
    assert [d["event_type"] for d in queued] == ["rotation.awaiting_approval", "rotation.completed"]
    assert all(d["status"] == "pending" for d in queued)
    assert "ConnectError" in queued[0]["last_error"]
    # Ordered per rotation: the later callback is not tried while the earlier one is pending.
    assert queued[1]["attempts"] == 0

    await env.restart()
    await receiver.start()
    env.clock.advance(3600)  # past the back-off
    got = await receiver.wait_for(2)
    assert [r.payload["type"] for r in got] == ["rotation.awaiting_approval", "rotation.completed"]
    assert all(r.payload["data"]["change_id"] == "CHG0001" for r in got)
    assert all(r.payload["data"]["rotation_id"] == rotation_id for r in got)
    assert receiver.forged == 0
    # Every attempt of a callback carries its one webhook-id, so the receiver can dedupe.
    assert [r.webhook_id for r in got] == [d["event_id"] for d in queued]

    async def all_delivered() -> bool:
        return all(d["status"] == "delivered" for d in await deliveries(env, sub))

    await wait_until(all_delivered)
    assert other.received == [] and await deliveries(env, (await env.api.get(
        "/v1/subscriptions")).json()["items"][1]["id"]) == []  # fmt: skip


async def test_a_callback_is_retried_for_a_day_then_failed_and_can_be_redelivered(hooks, receiver):
    env = hooks
    receiver.status = 500
    receiver.body = b"x" * 10_000
    await receiver.start()
    sub = await subscribe(env, receiver)
    created = await env.api.post("/v1/rotations", json=rotation_body())
    rotation_id = created.json()["id"]

    async def tried() -> bool:
        items = await deliveries(env, sub)
        return bool(items) and items[0]["attempts"] >= 1

    await wait_until(tried)
    first = (await deliveries(env, sub))[0]
    assert first["event_type"] == "rotation.completed" and first["last_status_code"] == 500
    assert len(first["response_prefix"]) <= 512  # only a prefix of the answer is kept

    async def failed() -> bool:
        if (await deliveries(env, sub))[0]["status"] == "failed":
            return True
        receiver.arrived.clear()
        env.clock.advance(3 * 3600)
        await receiver.arrived.wait()  # the next attempt
        return False

    await wait_until(failed, timeout=120)
    done = (await deliveries(env, sub))[0]
    # Tried until 24 h after the first attempt, not beyond; the clock moved 3 h per step here,
    # so each due attempt ran once.
    lasted = datetime.fromisoformat(done["last_attempt_at"]) - datetime.fromisoformat(
        done["created_at"]
    )
    assert lasted == timedelta(hours=24) and 8 <= done["attempts"] <= 10
    assert done["next_attempt_at"] is None and receiver.received == []

    receiver.status = 200
    again = await env.api.post(f"/v1/subscriptions/{sub}/deliveries/{done['id']}/redeliver")
    assert again.status_code == 202, again.text
    got = await receiver.wait_for(1)
    assert got[0].webhook_id == done["event_id"]
    assert got[0].payload["data"]["rotation_id"] == rotation_id


async def test_a_redirect_is_not_followed(hooks, receiver):
    env = hooks
    receiver.status = 302
    receiver.location = "http://169.254.169.254/latest/meta-data/"
    await receiver.start()
    sub = await subscribe(env, receiver)
    await env.api.post("/v1/rotations", json=rotation_body())

    async def tried() -> bool:
        items = await deliveries(env, sub)
        return bool(items) and items[0]["attempts"] >= 1

    await wait_until(tried)
    item = (await deliveries(env, sub))[0]
    assert item["status"] == "pending" and item["last_status_code"] == 302
    assert "redirect" in item["last_error"]
    assert len(receiver.attempts) == 1  # nothing went to the redirect's target


async def test_the_exposure_alert_and_pauses_reach_subscribers(tmp_path, master_key, receiver):
    async for env in started_hooks(tmp_path, master_key, propagate=False, **LOOPBACK):
        await receiver.start()
        await subscribe(env, receiver, event_types=["exposure.exceeded", "rotation.paused"])
        body = rotation_body(exposure_limit_days=1, max_wait_days=2)
        rotation_id = (await env.api.post("/v1/rotations", json=body)).json()["id"]
        await env.worker.wait_for(AwaitPolicyPropagation)
        env.clock.advance(86400 + 60)  # verification has been off longer than a day
        got = await receiver.wait_for(1)
        assert got[0].payload["type"] == "exposure.exceeded"
        data = got[0].payload["data"]
        assert data["rotation_id"] == rotation_id and data["change_id"] == "CHG0001"
        assert data["exposure"]["limit_days"] == 1
        env.clock.advance(86400)  # the maximum wait runs out: the rotation pauses
        got = await receiver.wait_for(2)
        assert got[1].payload["type"] == "rotation.paused"
        assert got[1].payload["data"]["pending_decision"]["kind"] == "propagation_wait"


async def test_rotations_are_found_by_change_id(hooks):
    env = hooks
    first = (await env.api.post("/v1/rotations", json=rotation_body())).json()["id"]

    async def done() -> bool:
        return (await env.rotation(first))["state"] == "completed"

    await wait_until(done)
    other = rotation_body()
    other["change_id"] = "CHG0002"
    second = (await env.api.post("/v1/rotations", json=other)).json()["id"]
    found = (await env.api.get("/v1/rotations", params={"change_id": "CHG0002"})).json()
    assert [r["id"] for r in found["items"]] == [second]
    found = (await env.api.get("/v1/rotations", params={"change_id": "CHG0001"})).json()
    assert [r["id"] for r in found["items"]] == [first]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://itsm.example.com/hook", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost:8443/hook", "loopback"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://10.0.0.5/hook", "private"),
        ("https://[::1]/hook", "loopback"),
        ("https://user:pw@itsm.example.com/", "credentials"),
        ("https://no-such-host.invalid/hook", "resolved"),
    ],
)
async def test_the_ssrf_guard_refuses_internal_addresses_by_default(tmp_path, master_key, url, why):
    async for env in started_hooks(tmp_path, master_key):
        response = await env.api.post(
            "/v1/subscriptions", json={"url": url, "event_types": ["rotation.completed"]}
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "url_not_allowed" and why in response.json()["detail"]
        assert (await env.api.get("/v1/subscriptions")).json()["items"] == []


async def test_subscriptions_are_admin_only_and_the_secret_is_shown_once(hooks, receiver):
    env = hooks
    await receiver.start()
    sub = await subscribe(env, receiver)
    listed = (await env.api.get("/v1/subscriptions")).text
    assert receiver.secret not in listed and sub in listed
    made = await env.api.post("/v1/tokens", json={"name": "op", "role": "operator"})
    async with env.client(made.json()["token"]) as operator:
        assert (await operator.get("/v1/subscriptions")).status_code == 403
        refused = await operator.post(
            "/v1/subscriptions", json={"url": receiver.url, "event_types": ["rotation.failed"]}
        )
        assert refused.status_code == 403
    bad = await env.api.post("/v1/subscriptions", json={"url": receiver.url,
                                                        "event_types": ["rotation.exploded"]})  # fmt: skip
    assert bad.status_code == 422
    assert (await env.api.delete(f"/v1/subscriptions/{sub}")).status_code == 204
    assert (await env.api.get(f"/v1/subscriptions/{sub}")).status_code == 404


async def first_tried(env: Hooks, subscription_id: str) -> bool:
    items = await deliveries(env, subscription_id)
    return bool(items) and items[0]["attempts"] >= 1


def _tls_receiver(tmp_path) -> tuple[Receiver, str]:
    """An https receiver for `localhost` with a certificate from a private CA (file returned)."""
    ca = TestCA.root("ITSM Test CA")
    issued = ca.issue(["localhost"])
    (tmp_path / "itsm.crt").write_bytes(issued.pem_bundle())
    (tmp_path / "itsm.key").write_bytes(issued.key_pem())
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "itsm.crt", tmp_path / "itsm.key")
    return Receiver(tls=context, host="localhost"), str(tmp_path / "ca.pem")


@pytest.mark.parametrize("trusted", [True, False])
async def test_https_callbacks_check_the_receivers_certificate_for_its_name(
    tmp_path, master_key, trusted
):
    # The request goes to the checked address; the certificate must still match the URL's name.
    receiver, ca_file = _tls_receiver(tmp_path)
    await receiver.start()
    settings: dict[str, Any] = {"callback_allowed_networks": ["127.0.0.0/8", "::1/128"]}
    if trusted:
        settings["callback_ca_file"] = ca_file
    try:
        async for env in started_hooks(tmp_path, master_key, **settings):
            sub = await subscribe(env, receiver, event_types=["rotation.completed"])
            await env.api.post("/v1/rotations", json=rotation_body())

            await wait_until(functools.partial(first_tried, env, sub))
            item = (await deliveries(env, sub))[0]
            if trusted:
                assert item["status"] == "delivered", item
                got = await receiver.wait_for(1)
                assert got[0].payload["type"] == "rotation.completed"
            else:
                assert item["status"] == "pending" and "ConnectError" in item["last_error"]
                assert receiver.received == []
    finally:
        await receiver.stop()
