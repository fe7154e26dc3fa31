"""The manual driver's flow on the embedded stack: a host operation needs a person, the service
asks for it, waits for the confirmation, then believes only what it observes on the ports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest

from certificates.bootstrap import build_runtime
from certificates.settings import Settings
from certrotate_shared import site_directory
from certrotate_shared.hostops import CertificateBackup, ManualTaskPending, OperatorTask
from certrotate_shared.messages.certificates import UpdateServerCertificate
from certrotate_shared.messages.common import ServerTarget
from certrotate_shared.messages.operator_tasks import ConfirmOperatorTask
from certrotate_shared.vault import Vault
from tests.integration.certificates.conftest import TOKEN, EventProbe, api_client
from tests.support.pki import TestCA
from tests.unit.certificates.fakes import server, site

pytestmark = pytest.mark.integration


class World:
    """The server a person works on: what its ports serve."""

    def __init__(self, old: str) -> None:
        self.served = dict.fromkeys(("8443", "8446", "443"), old)
        self.requested: list[str] = []

    async def probe(self, target: ServerTarget) -> dict[str, str]:
        return dict(self.served)


class ManualHost:
    """Like the manual driver: one task for the whole swap, done once it is confirmed."""

    def __init__(self, world: World, confirmed: Collection[str]) -> None:
        self.world, self.confirmed = world, set(confirmed)

    def _person(self, key: str) -> None:
        task_id = "task-" + key.split(":")[0][:8]
        if task_id not in self.confirmed:
            self.world.requested.append(task_id)
            raise ManualTaskPending(
                OperatorTask(
                    task_id=task_id,
                    title="Install the new certificate on sepm-a1",
                    instructions="Run the Management Server Configuration Wizard ...",
                    verification="every TLS port of sepm-a1 serves the new fingerprint",
                    server="sepm-a1",
                )
            )

    async def backup_certificate(self, target: ServerTarget, *, key: str) -> CertificateBackup:
        self._person(key)
        return CertificateBackup("manual-backup", self.world.served["443"])

    async def install_certificate(self, target: ServerTarget, bundle: Any, *, key: str) -> None:
        self._person(key)

    async def restore_certificate(self, target: ServerTarget, ref: str, *, key: str) -> None:
        self._person(key)

    async def restart_service(self, target: ServerTarget, service: str, *, key: str) -> None:
        self._person(key)

    async def close(self) -> None:
        pass


@pytest.fixture
async def embedded(tmp_path: Path, master_key: str) -> AsyncIterator[tuple[Any, EventProbe, World]]:
    world = World("0" * 64)

    def hostops(site: Any, vault: Any, *, confirmed_tasks: Collection[str] = ()) -> ManualHost:
        return ManualHost(world, confirmed_tasks)

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/certificates.db",
        vault_url=f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        transport="local",
        local_log_path=str(tmp_path / "transport.db"),
        master_key=master_key,
        internal_token=TOKEN,
        verify_timeout_s=0.5,
        verify_interval_s=0.1,
        work_poll_s=0.1,
    )
    vault = Vault.from_settings(settings)
    await site_directory.publish(vault, site(), revision=1)  # as the orchestrator does
    await vault.stop()
    runtime = build_runtime(settings, hostops=hostops, probe=world.probe)
    await runtime.start(serve_http=False)
    probe = EventProbe(
        bus=runtime.transport,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.db",
        transport="local",
        local_log_path=str(tmp_path / "transport.db"),
        master_key=master_key,
    )
    await probe.runtime.start()
    try:
        yield runtime, probe, world
    finally:
        await probe.runtime.stop()
        await runtime.stop()


async def test_a_manual_swap_is_requested_then_verified_by_observation(embedded: Any) -> None:
    runtime, probe, world = embedded
    issued = TestCA.root().issue(["sepm-a1.corp.example"])
    async with api_client(runtime) as api:
        stored = await api.post(
            "/internal/v1/bundles",
            json={"site": "site-a", "hostnames": ["sepm-a1.corp.example"], **issued.upload("pem")},
        )
    ref = stored.json()["bundle_ref"]
    saga = str(uuid.uuid4())
    command = UpdateServerCertificate(
        idempotency_key=f"{saga}:update:1",
        site=site(),
        server=server(),
        bundle_ref=ref,
        expected_fingerprint=issued.fingerprint,
    )
    await probe.emit(command, saga)
    task = (await probe.wait_for("OperatorTaskRequested")).payload
    assert task["service"] == "certificates" and task["server"] == "sepm-a1"
    assert task["site"] == "site-a" and "Wizard" in task["instructions"]

    def confirm(n: int) -> ConfirmOperatorTask:
        return ConfirmOperatorTask(
            idempotency_key=f"{saga}:confirm:{n}",
            target_service="certificates",
            task_id=task["task_id"],
            confirmed_by="alice",
        )

    # Confirmed, but the ports still serve the old certificate: the task stays open.
    await probe.emit(confirm(1), saga)
    refused = (await probe.wait_for("OperatorTaskVerificationFailed")).payload
    assert refused["task_id"] == task["task_id"]
    assert "8443" in refused["reason"]
    assert probe.of("ServerCertificateUpdated") == []

    # The person really did it: the confirmation is now borne out by what the ports serve.
    world.served = dict.fromkeys(world.served, issued.fingerprint)
    await probe.emit(confirm(2), saga)
    updated = await probe.wait_for("ServerCertificateUpdated")
    assert updated.payload["ports_verified"] == world.served
    assert len(probe.of("OperatorTaskRequested")) == 1  # the same task, never asked twice


async def test_confirming_an_unknown_task_is_refused(embedded: Any) -> None:
    _runtime, probe, _world = embedded
    saga = str(uuid.uuid4())
    await probe.emit(
        ConfirmOperatorTask(
            idempotency_key=f"{saga}:confirm:1",
            target_service="certificates",
            task_id="no-such-task",
            confirmed_by="bob",
        ),
        saga,
    )
    refused = (await probe.wait_for("OperatorTaskVerificationFailed")).payload
    assert refused["task_id"] == "no-such-task"
