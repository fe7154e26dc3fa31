"""Issue 9's safety promises as an operator meets them: each service its own OS process over
Kafka and PostgreSQL, against the twin in its own process (issue 9 item 5)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from certrotate_shared.sepm.answers import locations
from tests.e2e.conftest import MakeWorld
from tests.e2e.support import (
    E2E,
    SEPM_PASSWORD,
    SEPM_USER,
    assert_site_rotated,
    scenario,
    site_servers,
)

pytestmark = pytest.mark.e2e


async def rotation_request(e2e: E2E, site: str) -> dict[str, Any]:
    """The body an operator POSTs to rotate `site` with a fresh certificate from the twin's CA."""
    install = (await e2e.issue_certificate(site))["install"]
    return {
        "site": site,
        "certificate": {
            "format": "pkcs12",
            "data_b64": install["data_b64"],
            "password": install["password"],
        },
        "options": {},
        "change_id": f"CHG-{uuid.uuid4().hex[:6]}",
    }


async def test_two_rotations_of_one_site_at_the_same_moment_one_wins_the_other_is_told_who(
    world: MakeWorld,
) -> None:
    e2e = await world(scenario())
    await e2e.register()
    first, second = await rotation_request(e2e, "site-a"), await rotation_request(e2e, "site-a")

    answers = await asyncio.gather(
        e2e.api.post("/v1/rotations", json=first), e2e.api.post("/v1/rotations", json=second)
    )

    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    [won] = [a for a in answers if a.status_code == 201]
    [lost] = [a for a in answers if a.status_code == 409]
    holder = won.json()["id"]
    assert lost.headers["content-type"].startswith("application/problem+json")
    problem = lost.json()
    assert problem["code"] == "site_busy"
    assert problem["rotation_id"] == holder
    assert holder in problem["detail"]

    # Site B replicates with site A: one farm, so it is busy too, and says with what.
    partner = await e2e.api.post("/v1/rotations", json=await rotation_request(e2e, "site-b"))
    assert partner.status_code == 409, partner.text
    problem = partner.json()
    assert problem["code"] == "site_busy"
    assert problem["rotation_id"] == holder
    assert "site-a" in problem["detail"]

    listed = (await e2e.api.get("/v1/rotations")).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert [r["id"] for r in items] == [holder]


@pytest.mark.timeout(600)
async def test_a_certificates_worker_that_never_answers_pauses_the_rotation_then_compensate_undoes_it(
    world: MakeWorld,
) -> None:
    # Short answer deadlines (real seconds) so the test does not wait the default 5 minutes;
    # one re-send, then a person decides.
    e2e = await world(
        scenario(),
        settings={"orchestrator": {"answer_deadline_sepm_seconds": 8, "answer_resends": 1}},
    )
    await e2e.register()
    originals = await e2e.twin.verification_settings("site-a")
    assert await e2e.twin.settled_replication("site-a") == {"site-b": "SUCCEEDED"}
    answer = await e2e.api.post("/v1/rotations", json=await rotation_request(e2e, "site-a"))
    assert answer.status_code == 201, answer.text
    rotation_id = answer.json()["id"]
    # The certificates worker dies before step 2 (disable verification), which it alone does,
    # and nobody restarts it.
    e2e.supervisor.kill("certificates")
    await e2e.supervisor.services["certificates"].wait()

    view = await e2e.wait_for(
        rotation_id, lambda v: v["state"] != "running", timeout=180, what="the pause"
    )
    assert view["state"] == "paused", view["reason"]
    decision = view["pending_decision"]
    assert decision["kind"] == "no_answer", decision
    assert decision["step"] == "disable_verification"
    assert view["current_step"]["name"] == "disable_verification"
    assert "re-sent 1 times" in decision["reason"], decision["reason"]
    assert "compensate" in decision["options"]
    # The history says what happened at the first deadline.
    history = json.dumps(await e2e.events(rotation_id))
    assert "re-sent with the same idempotency key" in history

    # The operator gives up on this rotation, then gets the worker running again: whatever the
    # lost command did is undone.
    decided = await e2e.api.post(
        f"/v1/rotations/{rotation_id}/decide",
        json={"decision": "compensate", "reason": "certificates worker down; try next window"},
    )
    assert decided.status_code == 200, decided.text
    await e2e.supervisor.start_service("certificates")

    view = await e2e.wait_terminal(rotation_id, timeout=180)
    assert view["state"] == "compensated", (view["reason"], view["pending_decision"])
    assert await e2e.twin.verification_settings("site-a") == originals
    assert await e2e.twin.settled_replication("site-a") == {"site-b": "SUCCEEDED"}
    assert (await e2e.twin.orphans())["count"] == 0
    assert [s["status"] for s in view["servers"]] == ["pending", "pending"]


async def another_admin_turns_verification_on(e2e: E2E, site: str, group_path: str) -> str:
    """What a second administrator does in the console: verification back on in the group's
    first location (a PATCH of that one setting on SEPM's REST API). Returns the location id."""
    async with httpx.AsyncClient(
        base_url=f"{e2e.twin.url}/sites/{site}/sepm/api/v1", timeout=30
    ) as http:
        login = await http.post(
            "/identity/authenticate",
            json={"username": SEPM_USER, "password": SEPM_PASSWORD, "domain": ""},
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        [domain] = (await http.get("/domains", headers=headers)).json()
        groups = (
            await http.get(
                "/groups", params={"pageSize": 1000, "domain": domain["id"]}, headers=headers
            )
        ).json()["content"]
        [group] = [g for g in groups if g["fullPathName"] == group_path]
        listed = (
            await http.get(
                f"/groups/{group['id']}/locations",
                params={"hasName": "true", "domainId": domain["id"]},
                headers=headers,
            )
        ).json()
        location = locations(listed, "GET /groups/{id}/locations")[0]
        body = {"configuration": {"general_settings": {"security_settings": {
            "secure_communications": True}}}}  # fmt: skip
        patched = await http.patch(
            f"/groups/{group['id']}/locations/{location.id}/settings", json=body, headers=headers
        )
        assert patched.status_code < 300, patched.text
        return str(location.id)


@pytest.mark.timeout(600)
async def test_verification_turned_back_on_during_the_wait_is_found_before_the_swap(
    world: MakeWorld,
) -> None:
    # Clients check in every 8 simulated hours: the first wait lasts long enough to act in.
    e2e = await world(scenario(heartbeat_s=8 * 3600))
    await e2e.register()
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    rotation_id, new_fp = await e2e.rotate()
    await e2e.wait_for(
        rotation_id,
        lambda v: v["current_step"]["name"] == "await_disable_propagation",
        timeout=180,
        what="the first propagation wait",
    )
    group = "My Company\\Workstations"
    location_id = await another_admin_turns_verification_on(e2e, "site-a", group)
    settings = await e2e.twin.verification_settings("site-a")
    assert [k for k, on in settings.items() if on and group in k], settings

    view = await assert_site_rotated(e2e, rotation_id, new_fp, before, timeout=300)

    # It did not swap with verification on: the check found it and sent the rotation back to
    # step 2, and the history says where.
    history = json.dumps(await e2e.events(rotation_id))
    assert "verification is on again in 1 locations" in history, history[-3000:]
    assert location_id in history
    forward = [s["name"] for s in view["steps"] if s["phase"] == "forward"]
    assert forward.count("disable_verification") == 2, forward
    assert forward.index("check_verification") < forward.index("update_certificate"), forward
    first_update = forward.index("update_certificate")
    assert "disable_verification" in forward[forward.index("check_verification") : first_update]
