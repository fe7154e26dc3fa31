"""A rotation of a site shaped like a real estate: a second SEPM domain and groups that inherit
their policy (issue 10 item 2). The twin refuses a settings PATCH through an inheriting group,
and a domain the API account did not log on to is invisible unless asked for by id: a rotation
that missed either would be refused or would orphan that domain's clients at the swap."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MakeWorld
from tests.e2e.support import assert_site_rotated, scenario, site_servers

pytestmark = pytest.mark.e2e


async def test_a_site_with_two_domains_and_inheriting_groups_rotates_without_orphans(
    world: MakeWorld,
) -> None:
    shape = scenario()
    shape["inherited_settings_patch"] = "refuse"
    shape["sites"][0]["groups"] += [
        {"name": "My Company\\Workstations\\Floor 1", "clients": 60, "inherits": True},
        {"name": "My Company\\Paris", "domain": "Europe", "clients": 40, "heartbeat_s": 300},
    ]
    e2e = await world(shape)
    await e2e.register()
    before = {s["name"]: s["served_fingerprint_sha256"].lower() for s in await site_servers(e2e)}
    rotation_id, new_fp = await e2e.rotate()

    # Completed, nobody orphaned in either domain (the twin's ground truth), verification on
    # again everywhere, every group converged.
    await assert_site_rotated(e2e, rotation_id, new_fp, before)
    settings = await e2e.twin.verification_settings("site-a")
    assert any(key.startswith("Europe:") for key in settings)
