"""What a security team watches: sums over the campaign, drill-down, the at-risk export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.integration.orchestrator.support import wait_until
from tests.integration.orchestrator.test_campaigns import campaign_body, estate, sites_of

pytestmark = pytest.mark.integration


async def waiting_at_the_orphan_gate(env: Any) -> dict[str, Any]:
    """site-c's rotation waits before its swap with 3 clients at risk; site-d is pending."""
    await estate(env)
    env.worker.at_risk = 3
    body = campaign_body(
        {"waves": [["site-c"], ["site-d"]]}, options={"propagation_threshold": 0.9}
    )
    view = (await env.api.post("/v1/campaigns", json=body)).json()
    rotation_id = sites_of(view)["site-c"]["rotation_id"]

    async def at_gate() -> bool:
        current = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
        return bool(current["progress"]["clients"]["at_risk"]) if "progress" in current else False

    await wait_until(at_gate)
    current = (await env.api.get(f"/v1/campaigns/{view['id']}")).json()
    assert sites_of(current)["site-c"]["rotation_id"] == rotation_id
    return current


async def test_progress_sums_clients_and_lists_every_decision_waiting(embedded):
    view = await waiting_at_the_orphan_gate(embedded)
    progress = view["progress"]
    assert progress["clients"] == {
        "total": 100, "reached": 100, "pending": 0, "at_risk": 3, "orphaned_outside_risk": 0,
        "sites_reporting": 1,
    }  # fmt: skip
    assert progress["forecast_end"] is None  # no rotation has completed yet
    (decision,) = progress["decisions_waiting"]
    assert decision["scope"] == "rotation" and decision["site"] == "site-c"
    assert decision["kind"] == "orphan_risk" and "3 clients" in decision["reason"]


async def test_a_wave_and_a_site_drill_down(embedded):
    env = embedded
    view = await waiting_at_the_orphan_gate(env)
    wave = (await env.api.get(f"/v1/campaigns/{view['id']}/waves/1")).json()
    assert [s["site"] for s in wave["sites"]] == ["site-c"]
    assert wave["clients"]["at_risk"] == 3 and wave["state"] == "running"
    second = (await env.api.get(f"/v1/campaigns/{view['id']}/waves/2")).json()
    assert second["state"] == "waiting" and second["clients"]["sites_reporting"] == 0
    site = (await env.api.get(f"/v1/campaigns/{view['id']}/sites/site-c")).json()
    assert site["status"] == "running" and site["wave"] == 1
    assert (
        site["clients"]["at_risk"] == 3 and site["clients"]["step"] == "await_disable_propagation"
    )
    assert site["rotation"]["state"] == "paused"
    assert site["rotation"]["pending_decision"]["kind"] == "orphan_risk"
    assert {e["type"] for e in site["events"]} >= {"SiteStarting", "SiteStarted"}
    assert all(e.get("site") == "site-c" for e in site["events"])
    missing = await env.api.get(f"/v1/campaigns/{view['id']}/waves/3")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await env.api.get(f"/v1/campaigns/{view['id']}/sites/nowhere")).status_code == 404


async def test_the_at_risk_export_names_the_site_and_keeps_spreadsheets_from_running_names(
    embedded,
):
    env = embedded
    env.monitor.state.rows = [
        {"uniqueId": "C1", "computerName": "laptop-1"},
        {"uniqueId": "C9", "computerName": '=HYPERLINK("http://evil","x")'},
    ]
    view = await waiting_at_the_orphan_gate(env)
    exported = await env.api.get(f"/v1/campaigns/{view['id']}/at-risk", params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    rotation_id = sites_of(view)["site-c"]["rotation_id"]
    assert [(r["site"], r["rotation_id"], r["uniqueId"]) for r in rows] == [
        ("site-c", rotation_id, "C1"), ("site-c", rotation_id, "C9")
    ]  # fmt: skip
    assert rows[1]["computerName"] == '\'=HYPERLINK("http://evil","x")'
    as_json = await env.api.get(f"/v1/campaigns/{view['id']}/at-risk")
    body = json.loads(as_json.text)
    assert [c["uniqueId"] for c in body["clients"]] == ["C1", "C9"]
    assert body["clients"][1]["computerName"] == '=HYPERLINK("http://evil","x")'
    assert body["unavailable"] == []
