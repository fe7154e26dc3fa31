"""No rotation waits forever, on the embedded stack: a worker that never answers."""

from __future__ import annotations

import pytest

from certrotate_shared.messages.certificates import SetCertificateVerification
from tests.integration.orchestrator.support import rotation_body, wait_until

pytestmark = pytest.mark.integration


async def view_of(env, rotation_id: str) -> dict:
    response = await env.api.get(f"/v1/rotations/{rotation_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def sent(env, rotation_id: str) -> list[dict]:
    events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    return [
        e for e in events if e["kind"] == "command" and e["type"] == "SetCertificateVerification"
    ]


async def paused(env, rotation_id: str) -> bool:
    return (await view_of(env, rotation_id))["state"] == "paused"


async def test_a_worker_that_never_answers_pauses_the_rotation_and_cancel_compensates(embedded):
    env = embedded
    env.worker.silent.add(SetCertificateVerification)
    created = await env.api.post("/v1/rotations", json=rotation_body())
    rotation_id = created.json()["id"]
    await env.worker.wait_for(SetCertificateVerification)
    # Time passes and nothing answers: the same command again at each deadline, then a pause.
    for sends in range(2, 5):
        env.clock.advance(301)

        async def moved(n=sends) -> bool:
            state = (await view_of(env, rotation_id))["state"]
            return len(await sent(env, rotation_id)) >= n or state == "paused"

        await wait_until(moved)
    await wait_until(lambda: paused(env, rotation_id))
    view = await view_of(env, rotation_id)
    pending = view["pending_decision"]
    assert pending["kind"] == "no_answer" and pending["options"] == ["retry", "compensate"]
    resent = await sent(env, rotation_id)
    assert len(resent) == 3  # the first send and two re-sends
    assert {c["detail"]["idempotency_key"] for c in resent} == {
        f"{rotation_id}:disable_verification:1"
    }

    # The operator gives up on it: the rotation compensates what the command may have done.
    env.worker.silent.clear()
    cancelled = await env.api.post(
        f"/v1/rotations/{rotation_id}/cancel", json={"reason": "certificates worker is down"}
    )
    assert cancelled.status_code == 200, cancelled.text

    async def compensated() -> bool:
        return (await view_of(env, rotation_id))["state"] == "compensated"

    await wait_until(compensated)
    events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    commands = [
        (e["type"], (e["detail"] or {}).get("mode")) for e in events if e["kind"] == "command"
    ]
    assert ("SetCertificateVerification", "restore") in commands
    assert commands[-2:] == [("RestoreReplication", None), ("PurgeCertificateBundle", None)]
