"""A command cannot steer the replication service's stored accounts: it acts on the site the
orchestrator published (certrotate_shared.site_directory), whatever the message names.

The attacker's listeners are real servers that relay to the twin, so a worker that followed
the message would succeed and the only trace is what the rogue heard."""

from __future__ import annotations

import uuid

import httpx
import pytest

from certrotate_shared import site_directory
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.replication import BreakReplication, InspectSite
from certrotate_shared.vault import Vault
from tests.support.rogue import Rogue

pytestmark = pytest.mark.integration


async def publish(stack, target: SiteTarget, revision: int) -> None:
    vault = Vault(stack.settings.vault_url, stack.settings.master_key_bytes())
    try:
        await site_directory.publish(vault, target, revision=revision)
    finally:
        await vault.stop()


def origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


async def test_a_command_naming_other_endpoints_and_trust_reaches_the_inventorys_site(
    stack, tmp_path
):
    site = stack.site
    ca = site.trusted_certificates_pem[0]
    sepm_rogue = await Rogue.start(origin(site.api_url), tls_dir=tmp_path, upstream_ca_pem=ca)
    agent_rogue = await Rogue.start(str(site.host_ops.endpoint))
    try:
        await publish(stack, site, revision=3)
        forged = site.model_copy(
            update={
                "api_url": sepm_rogue.steer(site.api_url),
                "trusted_certificates_pem": [ca, sepm_rogue.ca_pem],
                "host_ops": site.host_ops.model_copy(update={"endpoint": agent_rogue.url}),
                "revision": 3,
            }
        )
        await stack.start_service()
        saga = str(uuid.uuid4())
        inspect, broke = await stack.send(
            InspectSite(idempotency_key=f"{saga}:inspect:1", site=forged),
            BreakReplication(
                idempotency_key=f"{saga}:break:1", site=forged, partners=["site-b", "site-c"]
            ),
            saga_id=saga,
        )
        inspected = await stack.reply(inspect)
        assert inspected.type == "SiteInspected", inspected.payload
        assert {p["name"] for p in inspected.payload["partners"]} == {"site-b", "site-c"}
        broken = await stack.reply(broke)
        assert broken.type == "ReplicationBroken", broken.payload
        deleted = [e["target"] for e in await stack.operations("replication.partner.delete")]
        assert "site-a/site-b" in deleted and "site-a/site-c" in deleted
        # Neither the SEPM password, nor a bearer token, nor any host operation went there.
        assert sepm_rogue.heard == []
        assert agent_rogue.heard == []
    finally:
        await sepm_rogue.stop()
        await agent_rogue.stop()


async def test_a_trust_set_widened_by_the_command_does_not_let_a_man_in_the_middle_in(
    stack, tmp_path
):
    """The inventory's address is intercepted by a server whose certificate only the forged
    command trusts: the worker refuses the TLS handshake, so the account never leaves."""
    site = stack.site
    ca = site.trusted_certificates_pem[0]
    mitm = await Rogue.start(origin(site.api_url), tls_dir=tmp_path, upstream_ca_pem=ca)
    try:
        intercepted = site.model_copy(update={"api_url": mitm.steer(site.api_url)})
        await publish(stack, intercepted, revision=1)
        forged = intercepted.model_copy(update={"trusted_certificates_pem": [ca, mitm.ca_pem]})
        await stack.start_service()
        saga = str(uuid.uuid4())
        [inspect] = await stack.send(
            InspectSite(idempotency_key=f"{saga}:inspect:1", site=forged), saga_id=saga
        )
        failed = await stack.reply(inspect)
        assert failed.type == "SiteInspectionFailed"
        assert "certificate" in failed.payload["reason"]
        assert mitm.heard == []
    finally:
        await mitm.stop()
