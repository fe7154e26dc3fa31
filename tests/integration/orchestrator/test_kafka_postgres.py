"""The orchestrator over real Kafka and PostgreSQL: a whole rotation, and a restart mid-wait."""

from __future__ import annotations

import uuid

import httpx
import pytest

from certrotate_shared.clock import ManualClock
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.metrics import sample_sum
from tests.integration.orchestrator.harness import api_client, orchestrator
from tests.integration.orchestrator.support import (
    ADMIN,
    INTERNAL,
    StandInWorker,
    rotation_body,
    server_body,
    site_body,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(pg_url, kafka_bootstrap, topic_prefix, master_key, pg_schemas):
    suffix = uuid.uuid4().hex[:8]
    orch_schema, worker_schema = f"orch_{suffix}", f"standin_{suffix}"
    pg_schemas.extend([orch_schema, worker_schema, f"{orch_schema}_vault"])
    common = {
        "transport": "kafka",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "master_key": master_key,
        "database_url": pg_url,
    }
    orch = {
        **common,
        "database_schema": orch_schema,
        "vault_url": pg_url,
        # A vault of its own: a shared one would hold other tests' entries under other keys.
        "vault_schema": f"{orch_schema}_vault",
        "admin_token": ADMIN,
        "internal_token": INTERNAL,
        "timer_poll_seconds": 0.1,
        "rehearsal": True,
    }
    worker = {**common, "database_schema": worker_schema}
    return orch, worker


async def register_site(client: httpx.AsyncClient) -> str:
    site = f"site-{uuid.uuid4().hex[:6]}"
    assert (await client.post("/v1/sites", json=site_body(site, ["site-b"]))).status_code == 201
    for name in ("sepm-a1", "sepm-a2"):
        response = await client.post("/v1/servers", json=server_body(f"{site}-{name}", site))
        assert response.status_code == 201
    return site


async def state_of(client: httpx.AsyncClient, rotation_id: str) -> dict:
    return (await client.get(f"/v1/rotations/{rotation_id}")).json()


async def test_a_whole_rotation_completes_over_kafka_and_postgres(stack):
    orch_settings, worker_settings = stack
    runtime = orchestrator(orch_settings, clock=ManualClock())
    worker = StandInWorker(**worker_settings)
    await runtime.start(serve_http=False)
    await worker.runtime.start()
    try:
        async with api_client(runtime) as client:
            site = await register_site(client)
            created = await client.post("/v1/rotations", json=rotation_body(site))
            assert created.status_code == 201, created.text
            rotation_id = created.json()["id"]

            async def done() -> bool:
                return (await state_of(client, rotation_id))["state"] == "completed"

            await wait_until(done, timeout=60)
            view = await state_of(client, rotation_id)
            events = (await client.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
            scrape = await client.get("/metrics", headers={"Authorization": f"Bearer {INTERNAL}"})
    finally:
        await worker.runtime.stop()
        await runtime.stop()
    assert [s["status"] for s in view["servers"]] == ["updated", "updated"]
    # /metrics reads PostgreSQL and the Kafka consumer's positions at scrape time.
    assert scrape.status_code == 200, scrape.text
    assert sample_sum(scrape.text, "certrotate_rotations", state="completed") == 1
    assert sample_sum(scrape.text, "certrotate_metrics_source_up", source="orchestrator") == 1
    assert f'topic="{orch_settings["topic_prefix"]}.events"' in scrape.text
    commands = [e["type"] for e in events if e["kind"] == "command"]
    assert commands == [
        "InspectSite", "BreakReplication", "SetCertificateVerification",
        "AwaitPolicyPropagation", "CheckCertificateVerification", "UpdateServerCertificate",
        "UpdateServerCertificate",
        "SetCertificateVerification", "AwaitPolicyPropagation", "RestoreReplication",
        "PurgeCertificateBundle",
    ]  # fmt: skip
    answered = [e for e in events if e["kind"] == "event"]
    by_id = {e["message_id"]: e for e in events if e["kind"] == "command"}
    assert all(
        e["causation_id"] in by_id for e in answered if e["type"] != "CertificateBundlePurged"
    )


async def test_a_restarted_orchestrator_fires_the_timer_of_a_saga_waiting_before_the_stop(stack):
    orch_settings, worker_settings = stack
    clock = ManualClock()
    worker = StandInWorker(propagate=False, **worker_settings)
    await worker.runtime.start()
    first = orchestrator(orch_settings, clock=clock)
    await first.start(serve_http=False)
    try:
        async with api_client(first) as client:
            site = await register_site(client)
            rotation_id = (await client.post("/v1/rotations", json=rotation_body(site))).json()[
                "id"
            ]
            watch = await worker.wait_for(AwaitPolicyPropagation, timeout=60)
            assert watch.idempotency_key.startswith(rotation_id)

            async def waiting() -> bool:
                view = await state_of(client, rotation_id)
                return view["current_step"]["name"] == "await_disable_propagation"

            await wait_until(waiting)
    finally:
        await first.stop()
    # Fourteen days pass while no orchestrator runs.
    clock.advance(14 * 86400 + 1)
    second = orchestrator(orch_settings, clock=clock)
    await second.start(serve_http=False)
    try:
        async with api_client(second) as client:

            async def paused() -> bool:
                return (await state_of(client, rotation_id))["state"] == "paused"

            await wait_until(paused, timeout=30)
            view = await state_of(client, rotation_id)
            assert view["pending_decision"]["kind"] == "propagation_wait"
            assert view["propagation"][0]["outcome"] == "timed_out"
            # The saga carries on: the operator extends and a new watch goes out.
            worker.propagate = True
            extended = await client.post(
                f"/v1/rotations/{rotation_id}/decide",
                json={"decision": "extend", "reason": "", "extend_days": 2},
            )
            assert extended.status_code == 200, extended.text

            async def completed() -> bool:
                return (await state_of(client, rotation_id))["state"] == "completed"

            await wait_until(completed, timeout=60)
    finally:
        await second.stop()
        await worker.runtime.stop()
