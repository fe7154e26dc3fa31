"""The manual driver in embedded mode (SQLite, in-process transport): a person deletes and
re-adds the partner on the twin; the service verifies by observation before it reports."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx
import pytest

from certrotate_shared import site_directory
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.common import HostOpsTarget
from certrotate_shared.messages.operator_tasks import ConfirmOperatorTask
from certrotate_shared.messages.replication import BreakReplication, RestoreReplication
from certrotate_shared.transport.local import LocalTransport
from certrotate_shared.vault import Vault
from replication.bootstrap import build_runtime
from replication.settings import Settings
from sepm_twin import Twin
from tests.integration.replication.conftest import CREDENTIAL_REF, scenario, site_target, widen
from tests.support.probe import Probe

pytestmark = pytest.mark.integration


async def next_reply(probe: Probe, seen: int, timeout: float = 20.0) -> Envelope:
    async def arrived() -> Envelope:
        while len(probe.replies) <= seen:
            probe._arrived.clear()
            await probe._arrived.wait()
        return probe.replies[seen]

    return await asyncio.wait_for(arrived(), timeout)


async def operator_on_site_b(http: httpx.AsyncClient, action: str) -> None:
    """The same person at site-b's console; a twin that changes both sides at once has
    nothing left to do there (404 / 409)."""
    response = await http.post(
        f"/twin/v1/sites/site-b/replication/partners/site-a/{action}",
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code in (200, 404, 409), response.text


async def operator(http: httpx.AsyncClient, action: str) -> None:
    """What the person does on the server (here: through the twin's host agent)."""
    response = await http.post(
        f"/twin/v1/sites/site-a/replication/partners/site-b/{action}",
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 200, response.text


async def test_a_person_breaks_and_restores_replication_and_the_service_verifies(
    tmp_path, master_key
):
    vault_url = f"sqlite+aiosqlite:///{tmp_path}/vault.db"
    vault = Vault(vault_url, base64.urlsafe_b64decode(master_key.encode()))
    await vault.start()
    await vault.put(CREDENTIAL_REF, "sepm", {"username": "admin", "password": "admin"})
    await vault.stop()
    twin = await Twin.start(scenario(600.0))
    http = httpx.AsyncClient(base_url=twin.base_url, timeout=30)
    transport = LocalTransport(str(tmp_path / "transport.db"))
    common = {"transport": "local", "master_key": master_key}
    service = build_runtime(
        Settings(
            **common,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/replication.db",
            internal_token="internal-token-for-tests-0123456789",
            vault_url=vault_url,
            restore_poll_initial_s=0.1,
            restore_poll_max_s=0.5,
            work_poll_s=0.1,
        ),
        transport=transport,
    )
    await service.start(serve_http=False)
    site = site_target(twin, host_ops=HostOpsTarget(driver="manual"))
    vault = Vault(vault_url, base64.urlsafe_b64decode(master_key.encode()))
    await site_directory.publish(vault, site, revision=1)  # as the orchestrator does
    await vault.stop()
    saga = str(uuid.uuid4())
    probe = widen(
        Probe(bus=transport, database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.db", **common)
    )
    try:
        async with probe:
            [broke] = await probe.send(
                BreakReplication(idempotency_key=f"{saga}:break:1", site=site, partners=["site-b"]),
                saga_id=saga,
            )
            task = await next_reply(probe, 0)
            assert task.type == "OperatorTaskRequested"
            assert task.payload["service"] == "replication"
            assert "site-b" in task.payload["instructions"]
            task_id = task.payload["task_id"]

            # Confirmed too early: SEPM still lists the partner.
            confirm = ConfirmOperatorTask(
                idempotency_key=f"{saga}:confirm:1",
                target_service="replication",
                task_id=task_id,
                confirmed_by="alice",
            )
            await probe.send(confirm, saga_id=saga)
            refused = await next_reply(probe, 1)
            assert refused.type == "OperatorTaskVerificationFailed"
            assert "still lists site-b" in refused.payload["reason"]

            await operator(http, "delete")
            await probe.send(
                confirm.model_copy(update={"idempotency_key": f"{saga}:confirm:2"}), saga_id=saga
            )
            # Then site-b's side, at site-b's console; confirmation is the check there.
            far = await next_reply(probe, 2)
            assert far.type == "OperatorTaskRequested"
            assert "console of site site-b" in far.payload["instructions"]
            assert "right-click site-a" in far.payload["instructions"]
            await operator_on_site_b(http, "delete")
            await probe.send(
                confirm.model_copy(
                    update={
                        "idempotency_key": f"{saga}:confirm:far",
                        "task_id": far.payload["task_id"],
                    }
                ),
                saga_id=saga,
            )
            broken = await next_reply(probe, 3)
            assert broken.type == "ReplicationBroken"
            assert broken.causation_id == str(broke.message_id)
            assert broken.payload["broken_partners"] == ["site-b"]

            [restore] = await probe.send(
                RestoreReplication(
                    idempotency_key=f"{saga}:restore:1", site=site, partners=["site-b"]
                ),
                saga_id=saga,
            )
            add_task = await next_reply(probe, 4)
            assert add_task.type == "OperatorTaskRequested"
            await operator(http, "add")
            await probe.send(
                ConfirmOperatorTask(
                    idempotency_key=f"{saga}:confirm:3",
                    target_service="replication",
                    task_id=add_task.payload["task_id"],
                    confirmed_by="alice",
                ),
                saga_id=saga,
            )
            # site-b re-adds site-a only once site-a's data reached it (SUCCEEDED).
            far_add = await next_reply(probe, 5)
            assert far_add.type == "OperatorTaskRequested", far_add.payload
            assert "already lists site-a" in far_add.payload["instructions"]
            await operator_on_site_b(http, "add")
            await probe.send(
                ConfirmOperatorTask(
                    idempotency_key=f"{saga}:confirm:4",
                    target_service="replication",
                    task_id=far_add.payload["task_id"],
                    confirmed_by="alice",
                ),
                saga_id=saga,
            )
            restored = await next_reply(probe, 6)
            assert restored.type == "ReplicationRestored", restored.payload
            assert restored.causation_id == str(restore.message_id)
            assert restored.payload["partners"][0]["status_code"] == "SUCCEEDED"
    finally:
        await service.stop()
        await transport.stop()
        await http.aclose()
        await twin.stop()
