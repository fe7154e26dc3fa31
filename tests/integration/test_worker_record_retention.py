"""The replication and client-monitor services purge their own records of a rotation once the
orchestrator reported it ended and their own retention, counted from that end, is over.
Real PostgreSQL (a schema per service); the clock is moved by hand.

What stays on purpose: a partnership the rotation left broken (the only record of what to
re-add by hand), an operation or a watch still active, and the at-risk lists an approver
accepted (the evidence the rotation's history names, kept as long as that history)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from certrotate_shared.clock import ManualClock
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.retention import PurgeRotationRecords
from certrotate_shared.record_retention import Worker, purge_due
from certrotate_shared.runtime import ServiceRuntime

pytestmark = pytest.mark.integration

DAY = 86400.0
INTERNAL = "internal-token-for-tests-0123456789"


async def started(
    build: Callable[..., ServiceRuntime], settings: Any, clock: ManualClock
) -> ServiceRuntime:
    runtime = build(settings, clock=clock)
    await runtime.start(serve_http=False)
    return runtime


def common(tmp_path: Path, pg_url: str, schema: str, master_key: str) -> dict[str, Any]:
    return {
        "database_url": pg_url,
        "database_schema": schema,
        "transport": "local",
        "local_log_path": str(tmp_path / f"{schema}-bus.db"),
        "master_key": master_key,
        "internal_token": INTERNAL,
        "vault_url": f"sqlite+aiosqlite:///{tmp_path}/{schema}-vault.db",
    }


async def count(runtime: ServiceRuntime, table: Any, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with runtime.uow() as uow:
        return int((await uow.session.execute(query)).scalar_one())


async def tell_ended(
    runtime: ServiceRuntime, service: Worker, saga: str, clock: ManualClock, days_ago: float
) -> None:
    """The orchestrator's PurgeRotationRecords, handled as the consumer would."""
    command = PurgeRotationRecords(
        idempotency_key=f"{saga}:retention:{service}",
        target_service=service,
        ended_at=clock.now() - timedelta(days=days_ago),
    )
    handler = runtime.spec.handlers[PurgeRotationRecords]
    async with runtime.uow() as uow:
        await handler(command, Context(uow, Envelope.wrap(command, saga_id=saga)))
        await uow.commit()


async def rows(runtime: ServiceRuntime, write: Callable[[Any], Awaitable[None]]) -> None:
    async with runtime.uow() as uow:
        await write(uow.session)
        await uow.commit()


@pytest.fixture
async def replication(tmp_path, pg_url, pg_schemas, master_key) -> AsyncIterator[Any]:
    from replication.bootstrap import build_runtime
    from replication.settings import Settings

    schema = f"rep_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    clock = ManualClock()
    settings = Settings(**common(tmp_path, pg_url, schema, master_key), retention_days=30)
    runtime = await started(build_runtime, settings, clock)
    try:
        yield runtime, clock
    finally:
        await runtime.stop()


async def test_replication_purges_an_ended_rotation_but_keeps_a_partnership_left_broken(
    replication,
) -> None:
    from replication.adapters.orm import broken_partnerships, operations, partner_steps
    from replication.adapters.orm import retention_requests as requests
    from replication.service_layer.retention import purge_rotation

    runtime, clock = replication
    now = clock.now()
    done, left_broken, live = (str(uuid.uuid4()) for _ in range(3))

    async def write(session: Any) -> None:
        for saga, status in ((done, "done"), (left_broken, "done"), (live, "active")):
            await session.execute(
                insert(operations).values(
                    op_key=f"{saga}:break", saga_id=saga, kind="break", site="site-a",
                    command="{}", status=status, created_at=now,
                )
            )  # fmt: skip
            await session.execute(
                insert(partner_steps).values(
                    op_key=f"{saga}:break", partner="site-b", position=0, phase="broken",
                    polls=0, updated_at=now,
                )
            )  # fmt: skip
        for saga, state in ((done, "restored"), (left_broken, "broken"), (live, "broken")):
            await session.execute(
                insert(broken_partnerships).values(
                    saga_id=saga, site="site-a", partner="site-b", state=state,
                    op_key=f"{saga}:break",
                )
            )  # fmt: skip

    await rows(runtime, write)
    for saga in (done, left_broken, live):
        await tell_ended(runtime, "replication", saga, clock, days_ago=10)

    async def due() -> int:
        return await purge_due(
            runtime, requests, service="replication", retention_days=30,
            purge=purge_rotation,
        )  # fmt: skip

    # Ended 10 days ago, this service keeps 30: nothing goes yet, however often it looks.
    assert await due() == 0
    assert await count(runtime, operations) == 3
    clock.advance(21 * DAY)
    assert await due() == 2  # the live one is still worked on: asked again later
    assert await count(runtime, operations, saga_id=done) == 0
    assert await count(runtime, partner_steps, op_key=f"{done}:break") == 0
    assert await count(runtime, broken_partnerships, saga_id=done) == 0
    assert await count(runtime, operations, saga_id=left_broken) == 0
    # The only record of a partnership certrotate broke and never re-added stays.
    assert await count(runtime, broken_partnerships, saga_id=left_broken) == 1
    assert await count(runtime, operations, saga_id=live) == 1
    assert await count(runtime, requests, saga_id=live) == 1
    assert await due() == 0  # done once


@pytest.fixture
async def monitor(tmp_path, pg_url, pg_schemas, master_key) -> AsyncIterator[Any]:
    from client_monitor.bootstrap import build_runtime
    from client_monitor.settings import Settings

    schema = f"cm_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    clock = ManualClock()
    settings = Settings(**common(tmp_path, pg_url, schema, master_key), retention_days=30)
    runtime = await started(build_runtime, settings, clock)
    try:
        yield runtime, clock
    finally:
        await runtime.stop()


async def test_client_monitor_purges_watches_and_keeps_accepted_lists(monitor) -> None:
    from client_monitor.adapters.orm import (
        accepted_list_clients,
        accepted_lists,
        pending_clients,
        watches,
    )
    from client_monitor.adapters.orm import retention_requests as requests
    from client_monitor.service_layer.retention import purge_rotation

    runtime, clock = monitor
    now = clock.now()
    saga = str(uuid.uuid4())
    client = {"computer_name": "pc-1", "group_path": "My Company\\Default", "online": False,
              "last_update_ms": 0, "days_offline": 40.0, "profile_serial": "A3AF-1"}  # fmt: skip

    async def write(session: Any) -> None:
        for watch in ("w-disable", "w-enable"):
            await session.execute(
                insert(watches).values(
                    watch_id=f"{saga}:{watch}", saga_id=saga, site="site-a", status="propagated",
                    deadline=now, command="{}", opened_at=now, closed_at=now,
                )
            )  # fmt: skip
            await session.execute(
                insert(pending_clients).values(
                    watch_id=f"{saga}:{watch}", position=0, unique_id="C1", stale=True, **client
                )
            )
        await session.execute(
            insert(accepted_lists).values(
                list_id="al-1", watch_id=f"{saga}:w-disable", status="stalled", client_count=1,
                sha256="ab" * 32, created_at=now,
            )
        )  # fmt: skip
        await session.execute(
            insert(accepted_list_clients).values(list_id="al-1", unique_id="C1", **client)
        )

    await rows(runtime, write)
    await tell_ended(runtime, "client-monitor", saga, clock, days_ago=31)
    purged = await purge_due(
        runtime, requests, service="client-monitor", retention_days=30,
        purge=purge_rotation,
    )  # fmt: skip
    assert purged == 1
    assert await count(runtime, watches, saga_id=saga) == 0
    assert await count(runtime, pending_clients) == 0
    # The approver's accepted list is evidence the rotation's history names: it stays.
    assert await count(runtime, accepted_lists, list_id="al-1") == 1
    assert await count(runtime, accepted_list_clients, list_id="al-1") == 1
