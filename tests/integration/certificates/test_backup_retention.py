"""After a rotation's retention, the certificates service deletes the backups it took on the
servers: from the hosts (the twin really holds them), then from its records; a crash between
the two loses nothing, and a backup a rollback may still need stays."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from certificates.adapters.orm import jobs, server_backups
from certificates.service_layer.housekeeping import forget_finished_after_purge
from certrotate_shared.tables import command_outcomes
from tests.integration.certificates.test_against_twin import Stack, stack

pytestmark = pytest.mark.integration
__all__ = ["stack"]


async def updated_with_backup(stack: Stack, server: str = "sepm-a1") -> tuple[str, str]:
    """A rotation that swapped `server`: (its saga id, the backup the host keeps)."""
    ref, fingerprint = await stack.new_bundle(server)
    saga = str(uuid.uuid4())
    await stack.probe.emit(stack.update(saga, server, ref, fingerprint), saga)
    updated = await stack.probe.wait_for(
        "ServerCertificateUpdated", where=lambda e: e.saga_id == saga, timeout=60
    )
    backup_ref = updated.payload["backup_ref"]
    assert backup_ref in await host_backups(stack, server)
    return saga, backup_ref


async def host_backups(stack: Stack, server: str) -> set[str]:
    view = (await stack.twin_http.get(f"/twin/v1/servers/{server}")).json()
    return {b["backup_id"] for b in view["backups"]}


async def records(stack: Stack, saga: str) -> list[Any]:
    async with stack.runtime.uow() as uow:
        query = select(server_backups).where(server_backups.c.saga_id == saga)
        return list((await uow.session.execute(query)).all())


async def outcomes(stack: Stack, saga: str) -> list[str]:
    """The idempotency keys of the rotation's recorded command outcomes."""
    async with stack.runtime.uow() as uow:
        keys = command_outcomes.c.idempotency_key
        query = select(keys).where(keys.like(f"{saga}:%"))
        return list((await uow.session.execute(query)).scalars())


async def jobs_of(stack: Stack, saga: str) -> list[str]:
    async with stack.runtime.uow() as uow:
        query = select(jobs.c.command_type).where(jobs.c.saga_id == saga)
        return list((await uow.session.execute(query)).scalars())


async def purge(stack: Stack, saga: str, **body: Any) -> dict[str, int]:
    response = await stack.api.post(
        "/internal/v1/retention/purge", json={"saga_ids": [saga], **body}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_retention_deletes_the_backup_from_the_host_then_its_record(stack: Stack) -> None:
    saga, backup_ref = await updated_with_backup(stack)
    other, _ = await updated_with_backup(stack, "sepm-a2")
    assert await outcomes(stack, saga) == [f"{saga}:update:sepm-a1:1"]
    counts = await purge(stack, saga)
    assert counts["server_backups"] == 1 and counts["server_backups_kept"] == 0
    assert counts["command_outcomes"] == 1
    assert counts["jobs"] == 1  # the swap's, finished; the deletion's is queued
    # Another rotation's answers stay: its commands may still come again.
    assert await outcomes(stack, other) == [f"{other}:update:sepm-a2:1"]

    deleted = await stack.probe.wait_for("ServerBackupDeleted", where=lambda e: e.saga_id == saga)
    assert deleted.payload == {
        "site": "site-a",
        "server": "sepm-a1",
        "backup_ref": backup_ref,
        "already_gone": False,
    }
    assert backup_ref not in await host_backups(stack, "sepm-a1")
    assert await records(stack, saga) == []
    # The deletion's own answer, recorded after the purge, goes once it has finished.
    deletion = f"{saga}:retention:delete-backup:site-a:sepm-a1"
    assert await outcomes(stack, saga) == [deletion]
    assert await forget_finished_after_purge(stack.runtime) == 1
    assert await outcomes(stack, saga) == []
    assert await jobs_of(stack, saga) == []
    # Asked again (a lost answer, a second replica): nothing is queued twice.
    assert (await purge(stack, saga))["server_backups"] == 0


async def test_a_crash_after_the_files_went_is_finished_by_the_next_run(stack: Stack) -> None:
    saga, backup_ref = await updated_with_backup(stack)
    # The host deleted the files, then the worker died before it purged the record.
    gone = await stack.twin_http.post(
        f"/twin/v1/servers/sepm-a1/certificate/backups/{backup_ref}/delete",
        headers={"Idempotency-Key": f"{saga}:first-run"},
    )
    assert gone.json()["deleted"] is True
    assert len(await records(stack, saga)) == 1

    await purge(stack, saga)
    deleted = await stack.probe.wait_for("ServerBackupDeleted", where=lambda e: e.saga_id == saga)
    assert deleted.payload["already_gone"] is True
    assert deleted.payload["backup_ref"] == backup_ref
    assert await records(stack, saga) == []


async def test_a_backup_a_rollback_may_still_need_stays_on_the_host(stack: Stack) -> None:
    saga, backup_ref = await updated_with_backup(stack)
    counts = await purge(stack, saga, keep_backups={saga: ["sepm-a1"]})
    assert counts == {
        "bundles": 0,
        "verification_originals": 0,
        "server_backups": 0,
        "server_backups_kept": 1,
        # The swap's recorded answer and its finished job: the rotation has ended, nobody
        # re-sends its commands.
        "command_outcomes": 1,
        "jobs": 1,
        "operator_tasks": 0,
    }
    assert await outcomes(stack, saga) == []
    assert backup_ref in await host_backups(stack, "sepm-a1")
    [row] = await records(stack, saga)
    assert row.backup_ref == backup_ref and row.deletion_requested_at is None
    assert stack.probe.of("ServerBackupDeleted") == []
