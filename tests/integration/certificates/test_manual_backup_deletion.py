"""A manual site's backup after retention: the certificates service asks a person to delete
exactly those files on that server, keeps the record while the task is open, and forgets the
backup when the person confirms."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from certificates.adapters.orm import jobs, operator_tasks, server_backups
from certificates.adapters.store import SqlCertificateStore
from certificates.bootstrap import build_runtime
from certificates.service_layer.housekeeping import forget_finished_after_purge
from certificates.settings import Settings
from certrotate_shared import site_directory
from certrotate_shared.hostops import CertificateBackup
from certrotate_shared.hostops.manual import ManualHostOperations
from certrotate_shared.messages.common import HostOpsTarget, SiteTarget
from certrotate_shared.messages.operator_tasks import ConfirmOperatorTask, confirmation_key_prefix
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.tables import command_outcomes
from certrotate_shared.vault import Vault
from tests.integration.certificates.conftest import TOKEN, EventProbe, api_client
from tests.unit.certificates.fakes import site

pytestmark = pytest.mark.integration

BACKUP_ID = "20260105T090000Z-0a1b2c3d"
FINGERPRINT = "ef" * 32


def manual_site() -> SiteTarget:
    return site().model_copy(update={"host_ops": HostOpsTarget(driver="manual")})


@pytest.fixture
async def embedded(tmp_path: Path, master_key: str) -> AsyncIterator[tuple[Any, EventProbe]]:
    def hostops(
        target: SiteTarget, vault: Any, *, confirmed_tasks: Collection[str] = ()
    ) -> ManualHostOperations:
        assert target.host_ops.driver == "manual"  # the published site, not a message's
        return ManualHostOperations(target, confirmed_tasks=confirmed_tasks)

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/certificates.db",
        vault_url=f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        transport="local",
        local_log_path=str(tmp_path / "transport.db"),
        master_key=master_key,
        internal_token=TOKEN,
        work_poll_s=0.1,
    )
    vault = Vault.from_settings(settings)
    await site_directory.publish(vault, manual_site(), revision=1)
    await vault.stop()
    runtime = build_runtime(settings, hostops=hostops)
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
        yield runtime, probe
    finally:
        await probe.runtime.stop()
        await runtime.stop()


async def backups(runtime: Any) -> int:
    async with runtime.uow() as uow:
        query = select(func.count()).select_from(server_backups)
        return int((await uow.session.execute(query)).scalar_one())


async def test_a_person_deletes_the_named_files_and_the_record_goes_on_confirmation(
    embedded: Any,
) -> None:
    runtime, probe = embedded
    saga = str(uuid.uuid4())
    store = SqlCertificateStore(runtime.sessions, SecretBox(bytes(32)), runtime.clock)
    backup = CertificateBackup(f"winrm:{BACKUP_ID}:{FINGERPRINT}", FINGERPRINT)
    await store.record_backup(saga, "site-a", "sepm-a1", backup)
    async with api_client(runtime) as api:
        purged = await api.post("/internal/v1/retention/purge", json={"saga_ids": [saga]})
    assert purged.status_code == 200 and purged.json()["server_backups"] == 1

    task = (await probe.wait_for("OperatorTaskRequested")).payload
    assert task["site"] == "site-a" and task["server"] == "sepm-a1"
    assert task["service"] == "certificates"
    assert (
        f"C:\\ProgramData\\certrotate\\backups\\{BACKUP_ID}\\keystore.jks" in task["instructions"]
    )
    assert await backups(runtime) == 1  # nothing is forgotten while the person has not acted

    await probe.emit(
        ConfirmOperatorTask(
            idempotency_key=f"{confirmation_key_prefix(saga, task['task_id'])}1",
            target_service="certificates",
            task_id=task["task_id"],
            confirmed_by="alice",
        ),
        saga,
    )
    deleted = (await probe.wait_for("ServerBackupDeleted")).payload
    assert deleted["backup_ref"] == backup.backup_ref and deleted["already_gone"] is False
    assert await backups(runtime) == 0
    assert len(probe.of("OperatorTaskRequested")) == 1
    # Finished: the job, the person's task and the recorded answer are forgotten.
    assert await forget_finished_after_purge(runtime) == 1
    async with runtime.uow() as uow:
        for table in (jobs, operator_tasks, command_outcomes):
            query = select(func.count()).select_from(table)
            assert (await uow.session.execute(query)).scalar_one() == 0
