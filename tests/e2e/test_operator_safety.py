"""Issue 9's safety promises as an operator meets them: each service its own OS process over
Kafka and PostgreSQL, against the twin in its own process (issue 9 item 5)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import MakeWorld
from tests.e2e.support import E2E, scenario

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
