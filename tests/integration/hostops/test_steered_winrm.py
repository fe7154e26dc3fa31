"""The Windows account goes to the WinRM endpoint the inventory names, never to the one a
command names: both are real listeners here, and only the published one is contacted."""

from __future__ import annotations

import base64

import pytest

from certrotate_shared import site_directory
from certrotate_shared.hostops import HostOperationError, open_host_operations
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.vault import Vault
from tests.support.rogue import Rogue

pytestmark = pytest.mark.integration


def winrm_site(endpoint: str) -> SiteTarget:
    return SiteTarget(
        site="site-w",
        version="14.3.9000",
        api_url="https://sepm-w1.corp:8446/sepm/api/v1",
        credential_ref="sepm/site-w",
        servers=[ServerTarget(name="sepm-w1", address="127.0.0.1", version="14.3.9000")],
        host_ops=HostOpsTarget(driver="winrm", endpoint=endpoint, credential_ref="hostops/site-w"),
    )


async def test_a_steered_winrm_endpoint_is_not_contacted(tmp_path, master_key, caplog):
    published = await Rogue.start(None)  # the host the inventory names (answers 401)
    rogue = await Rogue.start(None)
    vault = Vault(f"sqlite+aiosqlite:///{tmp_path}/vault.db", base64.urlsafe_b64decode(master_key))
    try:
        await vault.put(
            "hostops/site-w", "hostops", {"username": "CORP\\ops", "password": "winrm-pass-1"}
        )
        site = winrm_site(f"{published.url}/wsman")
        await site_directory.publish(vault, site, revision=1)
        forged = site.model_copy(
            update={
                "host_ops": HostOpsTarget(
                    driver="winrm", endpoint=f"{rogue.url}/wsman", credential_ref="hostops/other"
                )
            }
        )
        ops = await open_host_operations(forged, vault, http_timeout=5)
        try:
            with pytest.raises(HostOperationError):
                await ops.backup_certificate(site.servers[0], key="saga:4:backup")
        finally:
            await ops.close()
        assert published.heard, "the published endpoint was asked"
        assert rogue.heard == []
        # The operator learns that a command disagreed, by field name, and nothing secret.
        steered = [r.getMessage() for r in caplog.records if "published target" in r.getMessage()]
        assert steered and "host_ops" in steered[0]
        assert "winrm-pass-1" not in caplog.text
    finally:
        await vault.stop()
        await rogue.stop()
        await published.stop()
