"""A parked message surfaces in its rotation and can be replayed, over Kafka and PostgreSQL."""

from __future__ import annotations

import pytest

from certrotate_shared.clock import ManualClock
from certrotate_shared.messages.certificates import SetCertificateVerification
from tests.integration.orchestrator.harness import api_client, orchestrator
from tests.integration.orchestrator.support import StandInWorker, rotation_body, wait_until
from tests.integration.orchestrator.test_kafka_postgres import (
    register_site,
    stack,  # noqa: F401 (fixture)
    state_of,
)

pytestmark = pytest.mark.integration


async def test_a_parked_command_pauses_its_rotation_and_a_replay_resumes_it(stack):  # noqa: F811
    orch_settings, worker_settings = stack
    worker = StandInWorker(max_delivery_attempts=2, **worker_settings)
    worker.failing.add(SetCertificateVerification)
    runtime = orchestrator(orch_settings, clock=ManualClock())
    await runtime.start(serve_http=False)
    await worker.runtime.start()
    try:
        async with api_client(runtime) as client:
            site = await register_site(client)
            rotation_id = (await client.post("/v1/rotations", json=rotation_body(site))).json()[
                "id"
            ]
            await worker.wait_for(SetCertificateVerification, timeout=60)
            parked = next(e for e in worker.envelopes if e.type == "SetCertificateVerification")
            # The worker's consumer gives up on it, parks it and reports it (MessageDeadLettered).

            async def paused() -> bool:
                return (await state_of(client, rotation_id))["state"] == "paused"

            await wait_until(paused, timeout=60)
            view = await state_of(client, rotation_id)
            assert view["pending_decision"]["kind"] == "dead_letter"
            assert (
                "standin parked SetCertificateVerification after 2 attempts"
                in (view["pending_decision"]["reason"])
            )
            assert "KeyError" in view["pending_decision"]["reason"]

            listed = await client.get("/v1/dead-letters", params={"rotation_id": rotation_id})
            assert listed.status_code == 200, listed.text
            [letter] = listed.json()["items"]
            assert letter["message_id"] == str(parked.message_id)
            assert letter["service"] == "standin" and letter["attempts"] == 2
            assert letter["replayed_at"] is None

            # The cause is fixed; the operator replays it: the same message goes back.
            worker.failing.clear()
            seen_before = len(worker.envelopes)
            replayed = await client.post(f"/v1/dead-letters/{letter['id']}/replay")
            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["replayed_by"]

            async def completed() -> bool:
                return (await state_of(client, rotation_id))["state"] == "completed"

            await wait_until(completed, timeout=90)
            again = [e for e in worker.envelopes[seen_before:] if e.message_id == parked.message_id]
            assert len(again) == 1, "the replay puts the very same message back on its topic"
            twice = await client.post(f"/v1/dead-letters/{letter['id']}/replay")
            assert twice.status_code == 409 and twice.json()["code"] == "already_replayed"
            events = (await client.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
            kinds = [(e["kind"], e["type"]) for e in events]
            assert ("event", "MessageDeadLettered") in kinds
            assert ("operator", "ReplayRequested") in kinds
    finally:
        await worker.runtime.stop()
        await runtime.stop()
