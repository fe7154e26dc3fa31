"""The REST API on the embedded stack (SQLite, in-process transport, stand-in workers).

The certificates service is a small fake ASGI app (tests/integration/orchestrator/support.py):
it checks the internal token and answers the bundle contract, it does not parse certificates.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from certrotate_shared.vault import Vault
from orchestrator.adapters.orm import sagas
from tests.integration.orchestrator.support import (
    ADMIN,
    CERT_PEM,
    rotation_body,
    server_body,
    site_body,
    wait_until,
)

pytestmark = pytest.mark.integration


async def count_sagas(env) -> int:
    async with env.runtime.uow() as uow:
        return (await uow.session.execute(select(func.count()).select_from(sagas))).scalar_one()


async def rotation(env, rotation_id: str) -> dict:
    response = await env.api.get(f"/v1/rotations/{rotation_id}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(params=["sqlite", "postgres"])
def any_embedded(request):
    """The embedded stack on SQLite, or on PostgreSQL (where the hot statements are asyncpg's)."""
    return request.getfixturevalue("embedded" if request.param == "sqlite" else "embedded_pg")


async def test_a_rotation_requested_over_the_api_completes_and_shows_every_reading(any_embedded):
    env = any_embedded
    trusted_before = (await env.api.get("/v1/sites/site-a")).json()["trusted_certificates_count"]
    response = await env.api.post("/v1/rotations", json=rotation_body())
    assert response.status_code == 201, response.text
    rotation_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/rotations/{rotation_id}"

    async def completed() -> bool:
        return (await rotation(env, rotation_id))["state"] == "completed"

    await wait_until(completed)
    view = await rotation(env, rotation_id)
    assert view["current_step"]["name"] == "restore_replication"
    assert view["gates"]["propagation"]["passed"] and view["gates"]["propagation"]["percent"] == 100
    assert view["gates"]["orphan_risk"] == {
        "at_risk": 0, "budget": 0, "passed": True, "accepted": None,
    }  # fmt: skip
    assert [s["status"] for s in view["servers"]] == ["updated", "updated"]
    assert view["servers"][0]["ports_verified"] == {
        "8443": view["certificate"]["fingerprint_sha256"],
        "8446": view["certificate"]["fingerprint_sha256"],
        "443": view["certificate"]["fingerprint_sha256"],
    }
    assert view["replication"]["broken"] == ["site-b"]
    assert view["replication"]["restored"][0]["status_code"] == "SUCCEEDED"
    assert [w["outcome"] for w in view["propagation"]] == ["propagated", "propagated"]
    assert all(s["finished_at"] for s in view["steps"])
    # The new certificate joined the trust set the workers use for TLS to SEPM, and the
    # site's own set kept it for the next rotation; the site is free again.
    update = next(m for m in env.worker.seen if type(m).__name__ == "UpdateServerCertificate")
    assert CERT_PEM in update.site.trusted_certificates_pem
    site = (await env.api.get("/v1/sites/site-a")).json()
    assert site["trusted_certificates_count"] == trusted_before + 1
    again = await env.api.post("/v1/rotations", json=rotation_body())
    assert again.status_code == 201, again.text
    # Pre-flight sent the names clients use (not the internal address).
    sent = env.certificates.state.requests[0]["body"]
    assert sent["hostnames"] == ["sepm-a1.corp", "sepm-a2.corp"]
    events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    kinds = [(e["kind"], e["type"]) for e in events]
    assert ("command", "InspectSite") in kinds and ("event", "ReplicationRestored") in kinds
    assert "pfx-pass" not in str(events) and "AAAA" not in str(events)


async def test_idempotency_key_same_body_same_rotation_other_body_conflict(embedded):
    env = embedded
    headers = {"Idempotency-Key": "itsm-123"}
    first = await env.api.post("/v1/rotations", json=rotation_body(), headers=headers)
    again = await env.api.post("/v1/rotations", json=rotation_body(), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = await env.api.post(
        "/v1/rotations", json=rotation_body(max_wait_days=3), headers=headers
    )
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert await count_sagas(env) == 1


async def test_bad_input_gets_an_actionable_4xx_and_no_rotation(embedded):
    env = embedded
    unknown = await env.api.post("/v1/rotations", json=rotation_body(site="site-x"))
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_site"
    assert "POST /v1/sites" in unknown.json()["detail"]
    rejected = await env.api.post("/v1/rotations", json=rotation_body(password="wrong"))
    assert rejected.status_code == 422
    assert rejected.json()["code"] == "wrong_password"
    assert rejected.json()["detail"] == "the keystore password is wrong"
    malformed = await env.api.post(
        "/v1/rotations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"
    huge = rotation_body()
    huge["certificate"]["data_b64"] = "A" * (70 * 1024)
    too_big = await env.api.post("/v1/rotations", json=huge)
    assert too_big.status_code == 413
    window = await env.api.post(
        "/v1/rotations",
        json=rotation_body(maintenance_window={"cron": "not cron", "duration_minutes": 60}),
    )
    assert window.status_code == 422 and window.json()["code"] == "invalid_window"
    budget = await env.api.post("/v1/rotations", json=rotation_body(orphan_risk_budget=3))
    assert budget.status_code == 422 and "orphan_risk_budget_reason" in budget.json()["detail"]
    assert await count_sagas(env) == 0


async def test_roles_are_checked_for_each_action(embedded):
    env = embedded
    tokens = {}
    for role in ("viewer", "operator", "approver"):
        made = await env.api.post("/v1/tokens", json={"name": f"{role}-bot", "role": role})
        assert made.status_code == 201 and made.json()["token"].startswith("crt_")
        tokens[role] = made.json()["token"]
    listed = (await env.api.get("/v1/tokens")).json()["items"]
    assert all("token" not in t for t in listed)
    async with env.client(None) as anonymous:
        assert (await anonymous.get("/v1/rotations")).status_code == 401
    async with env.client("crt_not-a-token") as stranger:
        assert (await stranger.get("/v1/rotations")).status_code == 401
    async with env.client(tokens["viewer"]) as viewer:
        assert (await viewer.get("/v1/rotations")).status_code == 200
        denied = await viewer.post("/v1/rotations", json=rotation_body())
        assert denied.status_code == 403 and "operator" in denied.json()["detail"]
    async with env.client(tokens["operator"]) as operator:
        created = await operator.post("/v1/rotations", json=rotation_body(require_approval=True))
        assert created.status_code == 201
        rotation_id = created.json()["id"]
        assert created.json()["requested_by"] == "operator-bot"
        refused = await operator.post(f"/v1/rotations/{rotation_id}/approve", json={})
        assert refused.status_code == 403
        assert (await operator.post("/v1/sites", json={})).status_code == 403
    async with env.client(tokens["approver"]) as approver:
        approved = await approver.post(f"/v1/rotations/{rotation_id}/approve", json={"note": "ok"})
        assert approved.status_code == 200
        assert approved.json()["gates"]["approval"]["approved_by"] == "approver-bot"


async def test_rotations_list_filters_and_pages_with_a_cursor(embedded):
    env = embedded
    ids = []
    for site in ("site-a", "site-m", "site-n"):  # one active rotation per site
        if site != "site-a":
            assert (await env.api.post("/v1/sites", json=site_body(site))).status_code == 201
            await env.api.post("/v1/servers", json=server_body(f"{site}-1", site))
        ids.append((await env.api.post("/v1/rotations", json=rotation_body(site))).json()["id"])
        env.clock.advance(1)
    first = (await env.api.get("/v1/rotations", params={"limit": 2})).json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2]
    second = (
        await env.api.get("/v1/rotations", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [r["id"] for r in second["items"]] == ids[:1] and second["next_cursor"] is None
    none = (await env.api.get("/v1/rotations", params={"site": "site-z"})).json()
    assert none["items"] == []
    bad = await env.api.get("/v1/rotations", params={"cursor": "!!!"})
    assert bad.status_code == 422


async def test_site_credentials_are_stored_but_never_returned(embedded):
    env = embedded
    site = (await env.api.get("/v1/sites/site-a")).json()
    assert site["credentials_set"] is True and site["servers"] == ["sepm-a1", "sepm-a2"]
    assert "s3cret-sepm-pass" not in (await env.api.get("/v1/sites")).text
    # The vault holds them, sealed.
    store = Vault(env.settings["vault_url"], env.runtime.settings.master_key_bytes())
    await store.start()
    assert (await store.get("sepm/site-a"))["password"] == "s3cret-sepm-pass"
    await store.stop()


async def test_waiting_rotation_pauses_at_max_wait_and_proceed_names_the_accepted_clients(
    embedded,
):
    env = embedded
    env.worker.propagate = False
    rotation_id = (await env.api.post("/v1/rotations", json=rotation_body())).json()["id"]

    async def at_step(name: str) -> bool:
        return (await rotation(env, rotation_id))["current_step"]["name"] == name

    await wait_until(lambda: at_step("await_disable_propagation"))
    at_risk = await env.api.get(f"/v1/rotations/{rotation_id}/at-risk", params={"format": "csv"})
    assert at_risk.status_code == 200 and "laptop-2" in at_risk.text
    early = await env.api.post(
        f"/v1/rotations/{rotation_id}/decide", json={"decision": "extend", "reason": ""}
    )
    assert early.status_code == 409 and early.json()["code"] == "action_not_possible"
    env.clock.advance(14 * 86400)

    async def paused() -> bool:
        return (await rotation(env, rotation_id))["state"] == "paused"

    await wait_until(paused)
    view = await rotation(env, rotation_id)
    assert view["pending_decision"]["options"] == ["extend", "proceed", "abort"]
    assert view["propagation"][0]["outcome"] == "timed_out"
    decided = await env.api.post(
        f"/v1/rotations/{rotation_id}/decide",
        json={"decision": "proceed", "reason": "two lab laptops", "change_id": "CHG9"},
    )
    assert decided.status_code == 200, decided.text
    accepted = decided.json()["gates"]["orphan_risk"]["accepted"]
    assert accepted["accepted_count"] == 2 and accepted["change_id"] == "CHG9"
    events = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    decision = next(e for e in events if e["type"] == "DecisionMade")
    assert decision["actor"] == "admin"
    # The history names the frozen list; the clients are read back through the rotation.
    assert decision["detail"]["accepted_list"]["list_id"] == "al-1"
    assert decision["detail"]["accepted_list"]["count"] == 2
    named = await env.api.get(f"/v1/rotations/{rotation_id}/accepted-clients")
    assert [c["computerName"] for c in named.json()["clients"]] == ["laptop-1", "laptop-2"]


async def test_cancel_compensates_and_problem_json_for_unknown_rotation(embedded):
    env = embedded
    env.worker.propagate = False
    rotation_id = (await env.api.post("/v1/rotations", json=rotation_body())).json()["id"]

    async def waiting() -> bool:
        view = await rotation(env, rotation_id)
        return view["current_step"]["name"] == "await_disable_propagation"

    await wait_until(waiting)
    env.worker.propagate = True
    cancelled = await env.api.post(
        f"/v1/rotations/{rotation_id}/cancel", json={"reason": "wrong certificate"}
    )
    assert cancelled.status_code == 200

    async def compensated() -> bool:
        return (await rotation(env, rotation_id))["state"] == "compensated"

    await wait_until(compensated)
    view = await rotation(env, rotation_id)
    assert view["reason"] == "cancelled by admin: wrong certificate"
    missing = await env.api.get("/v1/rotations/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert ADMIN not in missing.text
