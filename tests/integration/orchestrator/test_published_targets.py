"""The orchestrator is the only writer of where a site is: every inventory change and every new
rotation seals the site's whole target in the vault, under a revision that only grows, and a
command carries the revision it was built from. Workers resolve sites from there (see
tests/integration/*/test_steered_commands.py for what that protects)."""

from __future__ import annotations

import pytest

from certrotate_shared import site_directory
from certrotate_shared.messages.common import HostOpsTarget, SiteTarget
from certrotate_shared.messages.replication import InspectSite
from certrotate_shared.vault import Vault
from tests.integration.orchestrator.support import (
    CERT_PEM,
    rotation_body,
    server_body,
    site_body,
    wait_until,
)

pytestmark = pytest.mark.integration

FORGED = SiteTarget(
    site="site-a",
    version="14.3.9000",
    api_url="https://attacker.example:8446/sepm/api/v1",
    credential_ref="sepm/other-site",
    trusted_certificates_pem=["-----BEGIN CERTIFICATE-----\nMIIBevil\n-----END CERTIFICATE-----\n"],
    servers=[],
    host_ops=HostOpsTarget(driver="twin", endpoint="http://attacker.example"),
)


async def published(env, site: SiteTarget = FORGED) -> site_directory.AuthoritativeSite:
    vault = Vault(env.settings["vault_url"], env.runtime.settings.master_key_bytes())
    try:
        return await site_directory.resolve(site, vault)
    finally:
        await vault.stop()


async def test_the_inventory_is_published_and_each_change_gets_a_newer_revision(embedded):
    env = embedded
    first = await published(env)
    # Whatever a command says, the published target is the inventory's.
    assert first.api_url == "https://site-a:8446/sepm/api/v1"
    assert first.host_ops.endpoint == "http://twin"
    assert first.credential_ref == "sepm/site-a"
    assert first.trusted_certificates_pem == []
    assert [(s.name, s.address, s.ports["8443"]) for s in first.servers] == [
        ("sepm-a1", "127.0.0.1", 18443),
        ("sepm-a2", "127.0.0.1", 18443),
    ]
    body = server_body("sepm-a3")
    body["address"] = "10.0.0.3"
    assert (await env.api.post("/v1/servers", json=body)).status_code == 201
    second = await published(env)
    assert second.revision is not None and first.revision is not None
    assert second.revision > first.revision
    assert ("sepm-a3", "10.0.0.3") in [(s.name, s.address) for s in second.servers]
    assert (await env.api.delete("/v1/servers/sepm-a3")).status_code == 204
    third = await published(env)
    assert third.revision is not None
    assert "sepm-a3" not in [s.name for s in third.servers] and third.revision > second.revision

    moved = site_body("site-a", ["site-b"])
    moved["api_url"] = "https://sepm-a-new:8446/sepm/api/v1"
    assert (await env.api.put("/v1/sites/site-a", json=moved)).status_code == 200
    assert (await published(env)).api_url == "https://sepm-a-new:8446/sepm/api/v1"


async def test_a_removed_site_resolves_to_nothing(embedded):
    env = embedded
    for name in ("sepm-a1", "sepm-a2"):
        assert (await env.api.delete(f"/v1/servers/{name}")).status_code == 204
    assert (await env.api.delete("/v1/sites/site-a")).status_code == 204
    with pytest.raises(site_directory.UnknownSiteTargetError, match="removed"):
        await published(env)


async def test_a_rotation_publishes_the_new_certificate_before_its_first_command(embedded):
    env = embedded
    before = await published(env)
    created = await env.api.post("/v1/rotations", json=rotation_body())
    assert created.status_code == 201, created.text
    inspect = await env.worker.wait_for(InspectSite)
    assert isinstance(inspect, InspectSite)
    assert inspect.site.revision is not None and before.revision is not None
    assert inspect.site.revision > before.revision
    # The revision the command names already trusts the certificate being installed.
    during = await published(env, inspect.site)
    assert during.revision is not None and during.revision >= inspect.site.revision
    assert CERT_PEM in during.trusted_certificates_pem

    async def completed() -> bool:
        view = await env.api.get(f"/v1/rotations/{created.json()['id']}")
        return view.json()["state"] == "completed"

    await wait_until(completed)
    # Once done, the certificate is in the inventory's trust set, so the next publication
    # (any inventory change) keeps it.
    assert (await env.api.post("/v1/servers", json=server_body("sepm-a2"))).status_code == 201
    assert CERT_PEM in (await published(env)).trusted_certificates_pem


async def test_a_command_newer_than_the_vault_waits(embedded):
    env = embedded
    current = await published(env)
    assert current.revision is not None
    ahead = FORGED.model_copy(update={"revision": current.revision + 1})
    with pytest.raises(site_directory.StaleSiteTargetError):
        await published(env, ahead)


async def test_a_site_registered_before_targets_were_published_is_published_at_start(embedded):
    """An upgrade: sites exist, their targets do not. The orchestrator publishes them when it
    starts, before any saga moves, so their rotations' commands find them."""
    env = embedded
    vault = Vault(env.settings["vault_url"], env.runtime.settings.master_key_bytes())
    await vault.delete(site_directory.target_ref("site-a"))
    with pytest.raises(site_directory.UnknownSiteTargetError):
        await site_directory.resolve(FORGED, vault)
    await vault.stop()
    await env.runtime.stop()
    await env.runtime.start(serve_http=False)
    restored = await wait_until_published(env)
    assert restored.api_url == "https://site-a:8446/sepm/api/v1"
    assert [s.name for s in restored.servers] == ["sepm-a1", "sepm-a2"]


async def wait_until_published(env) -> site_directory.AuthoritativeSite:
    found: list[site_directory.AuthoritativeSite] = []

    async def published_again() -> bool:
        try:
            found.append(await published(env))
        except site_directory.UnknownSiteTargetError:
            return False
        return True

    await wait_until(published_again)
    return found[-1]
