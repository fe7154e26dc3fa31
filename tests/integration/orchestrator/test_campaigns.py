"""Campaigns through the API on the embedded orchestrator, with a stand-in worker."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.orchestrator.support import rotation_body, server_body, site_body, wait_until

pytestmark = pytest.mark.integration

CERT = {"format": "pkcs12", "data_b64": "AAAA", "password": "pfx-pass"}


async def register(env: Any, name: str, partners: list[str] | None = None) -> None:
    assert (await env.api.post("/v1/sites", json=site_body(name, partners))).status_code == 201
    created = await env.api.post("/v1/servers", json=server_body(f"{name}-s1", name))
    assert created.status_code == 201, created.text


async def estate(env: Any) -> None:
    # The fixture has site-a (which replicates with site-b); site-c, -d, -e stand alone.
    await register(env, "site-b")
    for name in ("site-c", "site-d", "site-e"):
        await register(env, name)


def campaign_body(plan: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "ca-2026", "plan": plan, "certificate": CERT, **extra}


async def until_state(env: Any, campaign_id: str, *states: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update((await env.api.get(f"/v1/campaigns/{campaign_id}")).json())
        return seen["state"] in states

    await wait_until(reached)
    return seen


def sites_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["site"]: s for wave in view["plan"] for s in wave["sites"]}


async def rotation_span(env: Any, rotation_id: str) -> tuple[int, int]:
    """(first, last) position of the rotation in the orchestrator's global event history."""
    items = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    seqs = [i["seq"] for i in items if i["kind"] != "ignored"]
    return min(seqs), max(seqs)


async def at_propagation_wait(env: Any, *rotation_ids: str) -> None:
    async def waiting() -> bool:
        for rotation_id in rotation_ids:
            rotation = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()
            if rotation["current_step"]["name"] != "await_disable_propagation":
                return False
        return True

    await wait_until(waiting)


async def test_waves_canary_cap_and_farm_order_seen_in_the_rotations_history(embedded):
    env = embedded
    await estate(env)
    body = campaign_body(
        {"sites": ["site-c", "site-a", "site-b", "site-d", "site-e"], "canary": 1,
         "wave_size": 4},
        max_concurrent=2,
    )  # fmt: skip
    created = await env.api.post("/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    view = created.json()
    assert [[s["site"] for s in w["sites"]] for w in view["plan"]] == [
        ["site-c"], ["site-a", "site-b", "site-d", "site-e"]
    ]  # fmt: skip
    done = await until_state(env, view["id"], "completed", "halted")
    assert done["state"] == "completed", done
    assert done["sites_by_state"] == {"completed": 5}
    spans = {
        site: await rotation_span(env, entry["rotation_id"])
        for site, entry in sites_of(done).items()
    }
    # The canary ended before any site of the next wave started.
    assert all(spans["site-c"][1] < spans[s][0] for s in spans if s != "site-c")
    # site-a and site-b replicate with each other: never in rotation at the same time.
    a, b = spans["site-a"], spans["site-b"]
    assert a[1] < b[0] or b[1] < a[0], spans
    # Never more than two rotations at once.
    for site, (start, _) in spans.items():
        running = [s for s, (x, y) in spans.items() if x <= start <= y]
        assert len(running) <= 2, (site, running)
    listed = (await env.api.get("/v1/rotations", params={"limit": 50})).json()["items"]
    assert len(listed) == 5  # one rotation per site, no more


async def test_creating_twice_with_one_idempotency_key_makes_one_campaign(embedded):
    env = embedded
    await estate(env)
    body = campaign_body({"waves": [["site-c"], ["site-d"]]}, approve_each_wave=True)
    headers = {"Idempotency-Key": "camp-42"}
    first = await env.api.post("/v1/campaigns", json=body, headers=headers)
    again = await env.api.post("/v1/campaigns", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert first.json()["id"] == again.json()["id"]
    assert len((await env.api.get("/v1/campaigns")).json()["items"]) == 1
    # Pre-flight ran once per site, not again for the replay.
    assert len(env.certificates.state.requests) == 2
    other = await env.api.post("/v1/campaigns", json={**body, "name": "another"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


async def test_a_certificate_the_preflight_rejects_creates_nothing(embedded):
    env = embedded
    await estate(env)
    body = campaign_body(
        {"waves": [["site-c", "site-d"]]},
        certificates={"site-d": {**CERT, "password": "wrong"}},
    )
    refused = await env.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422
    assert refused.json()["code"] == "wrong_password"
    assert "site-d" in refused.json()["detail"]
    assert (await env.api.get("/v1/campaigns")).json()["items"] == []
    assert (await env.api.get("/v1/rotations")).json()["items"] == []


async def test_the_sites_are_pre_flighted_several_at_once_within_the_bound(embedded, monkeypatch):
    # 200 sites pre-flighted one after another held POST /v1/campaigns for minutes.
    from orchestrator.service_layer import campaigns

    monkeypatch.setattr(campaigns, "PREFLIGHT_CONCURRENCY", 2)
    env = embedded
    await estate(env)
    sites = ["site-c", "site-a", "site-b", "site-d", "site-e"]
    created = await env.api.post("/v1/campaigns", json=campaign_body({"waves": [sites]}))
    assert created.status_code == 201, created.text
    assert env.certificates.state.most_in_flight == 2
    # Each site still has its own pre-flight, for its own names.
    asked = sorted(tuple(r["body"]["hostnames"]) for r in env.certificates.state.requests)
    assert len(asked) == 5
    assert {r["body"]["site"] for r in env.certificates.state.requests} == set(sites)


async def test_with_several_sites_refused_the_first_in_plan_order_is_named(embedded):
    env = embedded
    await estate(env)
    wrong = {**CERT, "password": "wrong"}
    body = campaign_body(
        {"waves": [["site-c", "site-e", "site-d"]]},
        certificates={"site-e": wrong, "site-d": wrong},
    )
    refused = await env.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422
    assert refused.json()["code"] == "wrong_password"
    assert refused.json()["detail"].startswith("site 'site-e': ")
    assert (await env.api.get("/v1/campaigns")).json()["items"] == []


async def test_a_plan_naming_an_unknown_site_is_refused(embedded):
    env = embedded
    refused = await env.api.post("/v1/campaigns", json=campaign_body({"waves": [["nowhere"]]}))
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_site"


async def test_more_failures_than_the_budget_halt_until_an_approver_decides(embedded):
    env = embedded
    await estate(env)
    env.worker.propagate = False  # rotations wait at the propagation watch
    body = campaign_body({"waves": [["site-c", "site-d"]]}, max_failures=0)
    view = (await env.api.post("/v1/campaigns", json=body)).json()
    first = sites_of(view)["site-c"]["rotation_id"]
    assert first is not None
    assert sites_of(view)["site-d"]["status"] == "pending"  # the cap is 1 by default
    await at_propagation_wait(env, first)
    env.worker.propagate = True
    # The rotation fails (here an operator cancels it outside the campaign: compensated).
    cancelled = await env.api.post(f"/v1/rotations/{first}/cancel", json={"reason": "bad"})
    assert cancelled.status_code == 200
    halted = await until_state(env, view["id"], "halted")
    assert halted["decision_waiting"]["kind"] == "failure_budget"
    assert sites_of(halted)["site-d"]["status"] == "pending"
    viewer = await env.api.post("/v1/tokens", json={"name": "ops", "role": "operator"})
    as_operator = env.client(viewer.json()["token"])
    refused = await as_operator.post(f"/v1/campaigns/{view['id']}/approve", json={})
    assert refused.status_code == 403
    await as_operator.aclose()
    decided = await env.api.post(
        f"/v1/campaigns/{view['id']}/approve", json={"decision": "abort", "note": "stop"}
    )
    assert decided.status_code == 200, decided.text
    ended = await until_state(env, view["id"], "aborted")
    assert sites_of(ended)["site-d"]["status"] == "skipped"
    assert sites_of(ended)["site-c"]["status"] == "compensated"


async def test_cancelling_the_campaign_cancels_its_running_rotations(embedded):
    env = embedded
    await estate(env)
    env.worker.propagate = False
    body = campaign_body({"waves": [["site-c", "site-d", "site-e"]]}, max_concurrent=2)
    view = (await env.api.post("/v1/campaigns", json=body)).json()
    # The POST's own tick and the campaign loop race to start the sites; the loser's view may
    # still show a site "starting", so read the campaign once two rotations are under way.
    started: dict[str, Any] = {}

    async def two_started() -> bool:
        started.update((await env.api.get(f"/v1/campaigns/{view['id']}")).json())
        return sum(1 for e in sites_of(started).values() if e["rotation_id"]) >= 2

    await wait_until(two_started)
    running = {s: e["rotation_id"] for s, e in sites_of(started).items() if e["rotation_id"]}
    assert sorted(running) == ["site-c", "site-d"]
    await at_propagation_wait(env, *running.values())
    cancelled = await env.api.post(f"/v1/campaigns/{view['id']}/cancel", json={"reason": "CA"})
    assert cancelled.status_code == 200, cancelled.text

    # Propagation comes back only once both are undoing: earlier, a rotation could pass its
    # wait and complete before the cancel reached it (failed once in a full run).
    async def undoing() -> bool:
        for rotation_id in running.values():
            state = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()["state"]
            if state not in ("compensating", "compensated"):
                return False
        return True

    await wait_until(undoing)
    env.worker.propagate = True  # the compensation waits for verification to be back on
    ended = await until_state(env, view["id"], "cancelled")
    assert {s: e["status"] for s, e in sites_of(ended).items()} == {
        "site-c": "cancelled", "site-d": "cancelled", "site-e": "skipped"
    }  # fmt: skip
    for rotation_id in running.values():
        rotation = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()
        assert rotation["state"] == "compensated"
        events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
        (asked,) = [e for e in events if e["type"] == "CancelRequested"]
        assert asked["actor"] == "admin" and "CA" in asked["detail"]["reason"]
    again = await env.api.post(f"/v1/campaigns/{view['id']}/resume")
    assert again.status_code == 409


async def test_a_paused_campaign_starts_no_new_rotation_until_resumed(embedded):
    env = embedded
    await estate(env)
    env.worker.propagate = False
    view = (await env.api.post("/v1/campaigns", json=campaign_body(
        {"waves": [["site-c", "site-d"]]}))).json()  # fmt: skip
    first = sites_of(view)["site-c"]["rotation_id"]
    await at_propagation_wait(env, first)
    paused = await env.api.post(f"/v1/campaigns/{view['id']}/pause", json={})
    assert paused.json()["state"] == "paused"
    env.worker.propagate = True
    await env.api.post(f"/v1/rotations/{first}/cancel", json={"reason": "x"})

    async def first_ended() -> bool:
        current = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
        return sites_of(current)["site-c"]["status"] != "running"

    await wait_until(first_ended)
    current = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
    assert sites_of(current)["site-d"]["status"] == "pending"
    assert current["state"] == "paused"
    resumed = await env.api.post(f"/v1/campaigns/{view['id']}/resume")
    assert resumed.status_code == 200
    # Resumed, the failure is now seen against the budget (0): halted, not started.
    halted = await until_state(env, view["id"], "halted")
    assert sites_of(halted)["site-d"]["status"] == "pending"


async def test_a_rotation_waiting_for_an_approver_shows_among_the_campaigns_decisions(embedded):
    env = embedded
    await estate(env)
    body = campaign_body({"waves": [["site-c"]]}, options={"require_approval": True})
    view = (await env.api.post("/v1/campaigns", json=body)).json()
    rotation_id = sites_of(view)["site-c"]["rotation_id"]

    async def at_gate() -> bool:
        rotation = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()
        return bool(rotation["gates"]["waiting_for"])

    await wait_until(at_gate)
    rotation = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()
    current = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
    assert current["rotations_waiting"] == [
        {"site": "site-c", "rotation_id": rotation_id, "rotation_state": rotation["state"],
         "waiting_for": rotation["gates"]["waiting_for"]}
    ]  # fmt: skip
    assert sites_of(current)["site-c"]["rotation_state"] == rotation["state"]
    # Whoever started the campaign cannot approve its rotations (four eyes): another person.
    token = (await env.api.post("/v1/tokens", json={"name": "cab", "role": "approver"})).json()
    async with env.client(token["token"]) as approver:
        approved = await approver.post(f"/v1/rotations/{rotation_id}/approve", json={})
    assert approved.status_code == 200, approved.text
    done = await until_state(env, view["id"], "completed")
    assert done["rotations_waiting"] == []


async def test_a_site_another_rotation_holds_waits_and_starts_once_it_is_free(embedded):
    env = embedded
    await estate(env)
    env.worker.propagate = False
    outside = await env.api.post("/v1/rotations", json=rotation_body("site-c"))
    assert outside.status_code == 201, outside.text
    holder = outside.json()["id"]
    await at_propagation_wait(env, holder)
    view = (await env.api.post("/v1/campaigns", json=campaign_body({"waves": [["site-c"]]}))).json()
    entry = sites_of(view)["site-c"]
    assert entry["status"] == "pending" and entry["rotation_id"] is None
    assert holder in entry["note"]
    env.worker.propagate = True
    await env.api.post(f"/v1/rotations/{holder}/cancel", json={"reason": "make way"})
    done = await until_state(env, view["id"], "completed")
    started = sites_of(done)["site-c"]["rotation_id"]
    assert started not in (None, holder)
    assert sum(e["type"] == "SiteDeferred" for e in done["events"]) == 1
