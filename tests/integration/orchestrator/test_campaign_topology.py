"""Within a replication farm, sites rotate one after another in the farm's topology order."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.orchestrator.test_campaigns import (
    campaign_body,
    register,
    sites_of,
    until_state,
)

pytestmark = pytest.mark.integration

# A hub replicating with two leaves: site-x -- site-h -- site-y.
PARTNERS = {"site-h": ["site-x", "site-y"], "site-x": ["site-h"], "site-y": ["site-h"]}


async def history(env: Any, rotation_id: str) -> list[dict[str, Any]]:
    items = (await env.api.get(f"/v1/rotations/{rotation_id}/events")).json()["items"]
    return [i for i in items if i["kind"] != "ignored"]


async def test_leaves_go_before_their_hub_and_no_partner_is_re_added_mid_rotation(embedded):
    env = embedded
    for name, partners in PARTNERS.items():
        await register(env, name, partners)
    env.worker.partners = PARTNERS
    body = campaign_body({"waves": [["site-h", "site-x", "site-y"]]}, max_concurrent=3)
    created = await env.api.post("/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    # The plan shows the order the farm will follow: fewest partnerships first, the hub last.
    assert [s["site"] for s in created.json()["plan"][0]["sites"]] == [
        "site-x", "site-y", "site-h"
    ]  # fmt: skip
    done = await until_state(env, created.json()["id"], "completed", "halted")
    assert done["state"] == "completed", done
    events = {s: await history(env, e["rotation_id"]) for s, e in sites_of(done).items()}
    spans = {s: (min(i["seq"] for i in h), max(i["seq"] for i in h)) for s, h in events.items()}
    # One after another, in that order.
    assert spans["site-x"][1] < spans["site-y"][0] < spans["site-y"][1] < spans["site-h"][0]
    re_adds = {
        site: [i["seq"] for i in h if i["type"] == "ReplicationRestored"]
        for site, h in events.items()
    }
    assert all(re_adds.values()), re_adds  # every rotation broke and re-added its partners
    # When a site re-adds its partners, none of them is mid-rotation.
    for site, seqs in re_adds.items():
        for partner in PARTNERS[site]:
            first, last = spans[partner]
            assert not any(first <= seq <= last for seq in seqs), (site, partner, spans)
