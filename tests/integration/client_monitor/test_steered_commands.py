"""A watch cannot steer the client-monitor's SEPM account: it scans the site the orchestrator
published (certrotate_shared.site_directory), whatever API URL or trust set the command names.
The attacker's listener relays to the twin, so following the message would work unnoticed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from certrotate_shared import site_directory
from tests.integration.client_monitor.conftest import scenario
from tests.support.rogue import Rogue

pytestmark = pytest.mark.integration

PUSH = {"name": "My Company\\Laptops", "clients": 60, "mode": "push"}


async def test_a_watch_naming_another_api_url_and_trust_scans_the_inventorys_site(
    make_stack, tmp_path
):
    stack = await make_stack(scenario(PUSH))
    site = stack.site
    ca = site.trusted_certificates_pem[0]
    api = httpx.URL(site.api_url)
    rogue = await Rogue.start(
        f"https://{api.host}:{api.port}", tls_dir=tmp_path, upstream_ca_pem=ca
    )
    try:
        await site_directory.publish(stack.vault, site, revision=2)
        await stack.start_monitor()
        targets = await stack.disable_verification()
        stack.site = site.model_copy(
            update={
                "api_url": rogue.steer(site.api_url),
                "trusted_certificates_pem": [ca, rogue.ca_pem],
                "revision": 2,
            }
        )
        await stack.watch(targets, deadline_in=timedelta(days=7))
        await stack.advance(120)
        done = await stack.probe.wait_for("PolicyPropagated")
        assert done.payload["reached"] == 60
        assert rogue.heard == []
    finally:
        await rogue.stop()
