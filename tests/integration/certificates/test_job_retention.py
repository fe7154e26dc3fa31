"""The certificates service's jobs and operator tasks are bounded: a rotation's finished jobs
and their tasks go with its records (the retention purge), and a backup deletion queued by that
purge, or a job still unfinished when it ran, is forgotten, with its recorded answer, once it
has finished. Anything unfinished stays: a pending or running job, one waiting for a person, a
task a person has not done yet. On real PostgreSQL and on SQLite (the embedded mode)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from certificates.adapters.orm import jobs, operator_tasks
from certificates.bootstrap import build_runtime
from certificates.service_layer import housekeeping
from certificates.settings import Settings
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.certificates import DeleteServerBackup
from certrotate_shared.messages.operator_tasks import confirmation_key_prefix
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.tables import command_outcomes
from tests.integration.certificates.conftest import TOKEN, api_client

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NEVER = datetime(2100, 1, 1, tzinfo=UTC)  # not due, or held by another replica, in the test


@pytest.fixture(params=["postgresql", "sqlite"])
async def runtime(
    request: Any, tmp_path: Path, pg_url: str, pg_schemas: list[str], master_key: str
) -> AsyncIterator[ServiceRuntime]:
    schema = f"certjobs_{uuid.uuid4().hex[:8]}"
    if request.param == "postgresql":
        database_url = pg_url
        pg_schemas.append(schema)
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path}/certificates.db"
    settings = Settings(
        database_url=database_url,
        database_schema=schema,
        vault_url=f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        transport="local",
        local_log_path=str(tmp_path / "transport.db"),
        master_key=master_key,
        internal_token=TOKEN,
    )
    service = build_runtime(settings)
    # The tests run the housekeeping pass by hand: the service's own loop would race them.
    loops = service.spec.background
    service.spec.background = [loop for loop in loops if loop.__name__ != "bundle_purge"]
    assert len(service.spec.background) == len(loops) - 1
    await service.start(serve_http=False)
    try:
        yield service
    finally:
        await service.stop()


def deletion(saga: str, server: str) -> tuple[str, Envelope]:
    command = DeleteServerBackup(
        idempotency_key=f"{saga}:retention:delete-backup:site-a:{server}",
        site="site-a",
        server=server,
    )
    return command.idempotency_key, Envelope.wrap(command, saga_id=saga)


async def add(
    runtime: ServiceRuntime,
    saga: str,
    key: str,
    status: str,
    *,
    envelope: Envelope | None = None,
    tasks: dict[str, str] | None = None,
    answered: bool = False,
    purged: bool = False,
) -> str:
    """A job as the runner leaves it (`status`), its operator tasks (id -> status), the
    answer recorded under its key when it finished (`answered`), and whether its rotation's
    records were purged when it was queued (`purged`: a backup deletion)."""
    job_id = str(uuid.uuid4())
    # A rotation's own commands (updates, verification) by default; only the type is read here.
    command_type = envelope.type if envelope else "UpdateServerCertificate"
    envelope = envelope or deletion(saga, key)[1]
    async with runtime.uow() as uow:
        await uow.session.execute(
            insert(jobs).values(
                job_id=job_id, idempotency_key=key, command_type=command_type, saga_id=saga,
                envelope=envelope.model_dump_json(), status=status,
                owner="another-replica" if status == "running" else None,
                lease_until=NEVER if status == "running" else None,
                next_at=NEVER if status == "pending" else None,
                attempts=1, created_at=NOW, updated_at=NOW,
                rotation_purged_at=NOW if purged else None,
            )
        )  # fmt: skip
        for task_id, task_status in (tasks or {}).items():
            await uow.session.execute(
                insert(operator_tasks).values(
                    task_id=task_id, job_id=job_id, status=task_status, requested_at=NOW
                )
            )
        if answered:
            await uow.session.execute(
                insert(command_outcomes).values(
                    idempotency_key=key, command_type=command_type,
                    outcome_type="ServerBackupDeleted", outcome_version=1,
                    outcome_payload={}, recorded_at=NOW,
                )
            )  # fmt: skip
        await uow.commit()
    return job_id


async def left(runtime: ServiceRuntime, table: Any, column: str) -> set[str]:
    async with runtime.uow() as uow:
        return set((await uow.session.execute(select(table.c[column]))).scalars())


async def test_a_rotations_finished_jobs_and_their_tasks_go_with_its_records(runtime) -> None:
    saga, other = str(uuid.uuid4()), str(uuid.uuid4())
    finished = [
        await add(runtime, saga, f"{saga}:update:sepm-a1:1", "done", tasks={"t-done": "verified"}),
        await add(runtime, saga, f"{saga}:verification:2", "done"),
    ]
    unfinished = [
        await add(runtime, saga, f"{saga}:verification:5", "pending"),
        await add(runtime, saga, f"{saga}:update:sepm-a2:1", "running"),
        await add(runtime, saga, f"{saga}:rollback:sepm-a1:1", "awaiting_operator",
                  tasks={"t-waiting": "open", "t-checking": "confirmed"}),
        # Finished, but a person was asked for something and has not answered: the task is
        # still shown to them, and their confirmation must find it.
        await add(runtime, saga, f"{saga}:update:sepm-a3:1", "done", tasks={"t-open": "open"}),
    ]  # fmt: skip
    another = await add(runtime, other, f"{other}:update:sepm-b1:1", "done", tasks={"t-b": "verified"})  # fmt: skip

    async with api_client(runtime) as api:
        purged = await api.post("/internal/v1/retention/purge", json={"saga_ids": [saga]})
    assert purged.status_code == 200, purged.text
    assert purged.json()["jobs"] == 2 and purged.json()["operator_tasks"] == 1

    assert await left(runtime, jobs, "job_id") == {*unfinished, another}
    assert not set(finished) & await left(runtime, jobs, "job_id")
    assert await left(runtime, operator_tasks, "task_id") == {
        "t-waiting", "t-checking", "t-open", "t-b"
    }  # fmt: skip


async def test_a_finished_backup_deletion_is_forgotten_with_its_answer(runtime) -> None:
    saga, live = str(uuid.uuid4()), str(uuid.uuid4())
    deleted = []
    for n in range(5):  # more than one batch
        key, envelope = deletion(saga, f"sepm-{n}")
        tasks = {f"t-{n}": "verified"} if n == 0 else None
        await add(
            runtime, saga, key, "done", envelope=envelope, tasks=tasks, answered=True, purged=True
        )
        deleted.append(key)
    waiting_key, envelope = deletion(saga, "sepm-manual")
    waiting = await add(
        runtime, saga, waiting_key, "awaiting_operator", envelope=envelope,
        tasks={"t-manual": "open"}, purged=True,
    )  # fmt: skip
    # A live rotation's finished command: its answer may still be asked for again.
    swap = f"{live}:update:sepm-a1:1"
    kept = await add(runtime, live, swap, "done", answered=True)

    assert await housekeeping.forget_finished_after_purge(runtime, batch=2) == 5

    assert await left(runtime, jobs, "job_id") == {waiting, kept}
    assert await left(runtime, command_outcomes, "idempotency_key") == {swap}
    assert await left(runtime, operator_tasks, "task_id") == {"t-manual"}
    assert await housekeeping.forget_finished_after_purge(runtime, batch=2) == 0


async def test_a_job_unfinished_at_the_purge_is_forgotten_once_it_finishes(runtime) -> None:
    """A swap waiting for a person when its rotation's records were purged: the person can
    still confirm it (the orchestrator keeps the task), so it stays while unfinished; once it
    has finished, nothing would ever ask for it again, so it goes with its task, its answer
    and the person's confirmation."""
    saga, live = str(uuid.uuid4()), str(uuid.uuid4())
    key = f"{saga}:rollback:sepm-a1:1"
    job = await add(runtime, saga, key, "awaiting_operator", tasks={"t-swap": "open"})
    running = await add(runtime, saga, f"{saga}:verification:5", "running")
    kept = await add(runtime, live, f"{live}:update:sepm-b1:1", "done", answered=True)

    async with api_client(runtime) as api:
        purged = await api.post("/internal/v1/retention/purge", json={"saga_ids": [saga]})
    assert purged.status_code == 200, purged.text
    assert await housekeeping.forget_finished_after_purge(runtime) == 0
    assert await left(runtime, jobs, "job_id") == {job, running, kept}

    # The person confirms, the runner verifies and answers: the job is done.
    confirmation = f"{confirmation_key_prefix(saga, 't-swap')}1"
    async with runtime.uow() as uow:
        await uow.session.execute(update(jobs).where(jobs.c.job_id == job).values(status="done"))
        await uow.session.execute(
            update(operator_tasks)
            .where(operator_tasks.c.task_id == "t-swap")
            .values(status="verified")
        )
        # Its answer, and the confirmation's (recorded NULL: it is answered by the job).
        for answered_key, command_type, outcome in (
            (key, "RollbackServerCertificate", "ServerCertificateRolledBack"),
            (confirmation, "ConfirmOperatorTask", None),
        ):
            await uow.session.execute(
                insert(command_outcomes).values(
                    idempotency_key=answered_key, command_type=command_type,
                    outcome_type=outcome, outcome_version=1 if outcome else None,
                    outcome_payload={} if outcome else None, recorded_at=NOW,
                )
            )  # fmt: skip
        await uow.commit()

    assert await housekeeping.forget_finished_after_purge(runtime) == 1

    assert await left(runtime, jobs, "job_id") == {running, kept}
    assert await left(runtime, operator_tasks, "task_id") == set()
    assert await left(runtime, command_outcomes, "idempotency_key") == {f"{live}:update:sepm-b1:1"}
