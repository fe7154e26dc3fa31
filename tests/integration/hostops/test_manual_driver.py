"""The manual driver against a real twin: a person does the work (here through the twin's host
agent, as they would at the console), confirms, and the driver checks real TLS handshakes."""

from __future__ import annotations

import pytest

from certrotate_shared.hostops import (
    ManualTaskNotVerified,
    ManualTaskPending,
    host_operations_for,
    services_to_restart,
)
from tests.integration.hostops.conftest import LiveTwin, site_target
from tests.integration.hostops.test_twin_driver import pkcs12_bundle

pytestmark = pytest.mark.integration


async def operator_installs(
    live_twin: LiveTwin, server: str, install_body: dict[str, object]
) -> None:
    response = await live_twin.http.post(
        f"/twin/v1/servers/{server}/certificate/install",
        json=install_body,
        headers={"Idempotency-Key": "operator-install"},
    )
    assert response.status_code == 200, response.text
    for service in ("semsrv", "semwebsrv", "semapisrv"):
        restarted = await live_twin.http.post(
            f"/twin/v1/servers/{server}/services/{service}/restart",
            headers={"Idempotency-Key": f"operator-restart-{service}"},
        )
        assert restarted.status_code == 200, restarted.text


async def test_confirmed_work_is_checked_against_what_the_server_serves(
    live_twin: LiveTwin,
) -> None:
    site = site_target(live_twin.twin.topology(), "site-a", driver="manual")
    server = site.server("sepm-a1")
    issued = await live_twin.issue_pem(server.hostnames)
    bundle = pkcs12_bundle(issued)
    old = live_twin.server_view("sepm-a1")["served_fingerprint_sha256"]

    # 1. Backup: a task first; after confirmation, the observed certificate.
    ops = host_operations_for(site, None)
    with pytest.raises(ManualTaskPending) as caught:
        await ops.backup_certificate(server, key="saga-9:backup")
    backup_task = caught.value.task
    assert f"It now serves sha256 {old}" in backup_task.instructions
    ops = host_operations_for(site, None, confirmed_tasks={backup_task.task_id})
    backup = await ops.backup_certificate(server, key="saga-9:backup")
    assert backup.fingerprint == old

    # 2. Install: confirmed too early, the server still serves the old certificate.
    with pytest.raises(ManualTaskPending) as caught:
        await ops.install_certificate(server, bundle, key="saga-9:install")
    install_task = caught.value.task
    assert issued["fingerprint_sha256"] in install_task.verification
    confirmed = {backup_task.task_id, install_task.task_id}
    ops = host_operations_for(site, None, confirmed_tasks=confirmed)
    with pytest.raises(ManualTaskNotVerified, match=f"port 8446 serves {old}"):
        await ops.install_certificate(server, bundle, key="saga-9:install")

    # The operator really does it; the same confirmation now verifies, restarts are covered.
    install = issued["install"]
    assert isinstance(install, dict)
    await operator_installs(
        live_twin,
        "sepm-a1",
        {"format": "pem", "data_b64": install["data_b64"], "key_b64": install["key_b64"]},
    )
    ops = host_operations_for(site, None, confirmed_tasks=confirmed)
    await ops.install_certificate(server, bundle, key="saga-9:install")
    for service in services_to_restart(site.version):
        await ops.restart_service(server, service, key=f"saga-9:restart:{service}")
    await ops.close()
