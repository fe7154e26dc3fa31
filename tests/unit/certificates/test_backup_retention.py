"""DeleteServerBackup's procedure: files first, then the record, so a crash in between is
finished by the next run; failures keep the record and say where the backup is."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from certificates.service_layer.backup_retention import delete_server_backup
from certrotate_shared import site_directory
from certrotate_shared.envelope import Event
from certrotate_shared.hostops import HostOperationError, HostOperations
from certrotate_shared.messages.certificates import (
    DeleteServerBackup,
    ServerBackupDeleted,
    ServerBackupDeletionFailed,
)
from certrotate_shared.messages.common import SiteTarget
from tests.unit.certificates.fakes import FakeHost, FakeStore, server, site

pytestmark = pytest.mark.unit

COMMAND = DeleteServerBackup(idempotency_key="s1:retention", site="site-a", server="sepm-a1")


async def run(host: FakeHost, store: FakeStore, *, known: bool = True) -> Event:
    async def resolve(name: str) -> SiteTarget:
        if not known:
            raise site_directory.UnknownSiteTargetError(f"site {name!r} was removed")
        return site()

    async def open_ops(target: SiteTarget, confirmed: Collection[str]) -> HostOperations:
        return host

    return await delete_server_backup(
        COMMAND,
        saga_id="s1",
        store=store,
        resolve_site=resolve,
        host_operations=open_ops,
        confirmed_tasks=(),
    )


async def backed_up(host: FakeHost, store: FakeStore) -> str:
    backup = await host.backup_certificate(server(), key="s1:backup")
    await store.record_backup("s1", "site-a", "sepm-a1", backup)
    return backup.backup_ref


async def test_files_then_record_and_a_second_run_finds_both_gone() -> None:
    host, store = FakeHost(), FakeStore()
    ref = await backed_up(host, store)
    assert await run(host, store) == ServerBackupDeleted(
        site="site-a", server="sepm-a1", backup_ref=ref, already_gone=False
    )
    assert host.backups == {} and store.backups == {}
    again = await run(host, store)
    assert isinstance(again, ServerBackupDeleted) and again.already_gone


async def test_files_already_gone_count_as_deleted_and_the_record_goes() -> None:
    host, store = FakeHost(), FakeStore()
    ref = await backed_up(host, store)
    host.backups.clear()  # deleted on the host before a crash
    event = await run(host, store)
    assert event == ServerBackupDeleted(
        site="site-a", server="sepm-a1", backup_ref=ref, already_gone=True
    )
    assert store.backups == {}


async def test_a_retryable_failure_is_raised_for_the_runner_and_keeps_the_record() -> None:
    error = HostOperationError("unreachable", retryable=True, code="UNREACHABLE")
    host, store = FakeHost(fail={"delete_backup": error}), FakeStore()
    await backed_up(host, store)
    with pytest.raises(HostOperationError):
        await run(host, store)
    assert len(store.backups) == 1


async def test_a_refusal_or_a_removed_site_keeps_the_record_and_names_the_backup() -> None:
    refusal = HostOperationError("not ours", code="NOT_A_CERTROTATE_BACKUP")
    host, store = FakeHost(fail={"delete_backup": refusal}), FakeStore()
    ref = await backed_up(host, store)
    for event in (await run(host, store), await run(FakeHost(), store, known=False)):
        assert isinstance(event, ServerBackupDeletionFailed) and not event.retryable
        assert event.backup_ref == ref and ref in event.reason and "stays" in event.reason
    assert len(store.backups) == 1
