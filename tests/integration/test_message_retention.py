"""The messaging tables stay bounded and keep their guarantees: the inbox forgets a message only
once no broker could deliver it again, and a command's recorded outcome goes with its
rotation's records. A worker service (replication) on real PostgreSQL and on SQLite (the
embedded mode), its real consumer handling the records; wall-clock time is passed in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from certrotate_shared.clock import ManualClock
from certrotate_shared.envelope import Envelope, utcnow
from certrotate_shared.message_retention import purge_inbox
from certrotate_shared.messages.operator_tasks import confirmation_key_prefix
from certrotate_shared.messages.replication import SiteInspected
from certrotate_shared.messages.retention import PurgeRotationRecords, RotationRecordsPurged
from certrotate_shared.record_retention import purge_due
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.tables import command_outcomes, inbox
from certrotate_shared.topics import commands_topic, events_topic
from certrotate_shared.transport.base import IncomingRecord
from tests.support.factories import inspect_site

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
INTERNAL = "internal-token-for-tests-0123456789"


@pytest.fixture(params=["postgresql", "sqlite"])
async def replication(request, tmp_path, pg_url, pg_schemas, master_key) -> AsyncIterator[Any]:
    from replication.bootstrap import build_runtime
    from replication.settings import Settings

    schema = f"msgret_{uuid.uuid4().hex[:8]}"
    if request.param == "postgresql":
        database_url = pg_url
        pg_schemas.append(schema)
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path}/replication.db"
    settings = Settings(
        database_url=database_url,
        database_schema=schema,
        transport="local",
        local_log_path=str(tmp_path / "bus.db"),
        master_key=master_key,
        internal_token=INTERNAL,
        vault_url=f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        retention_days=30,
        # The service's own retention loop (on start, then hourly) would race the tests' calls
        # for the same rows: its window is out of their reach, except where a test sets it.
        inbox_retention_days=365,
    )
    clock = ManualClock()
    runtime = build_runtime(settings, clock=clock)
    await runtime.start(serve_http=False)
    try:
        yield runtime, clock
    finally:
        await runtime.stop()


_offsets = iter(range(1_000_000))


async def deliver(runtime: ServiceRuntime, envelope: Envelope) -> None:
    """Hand a record to the service's own consumer, as the transport would (again)."""
    record = IncomingRecord(
        topic=commands_topic("replication", runtime.settings.topic_prefix),
        partition=0,
        offset=next(_offsets),
        key=envelope.saga_id,
        value=envelope.to_bytes(),
    )
    assert await runtime.consumer.process(record)


async def count(runtime: ServiceRuntime, table: Any, *where: Any) -> int:
    async with runtime.uow() as uow:
        query = select(func.count()).select_from(table).where(*where)
        return int((await uow.session.execute(query)).scalar_one())


async def remembered(runtime: ServiceRuntime, *message_ids: str, received_at: datetime) -> None:
    """Inbox rows of messages handled at `received_at` (the inbox stamps wall-clock time)."""
    async with runtime.uow() as uow:
        await uow.session.execute(
            insert(inbox),
            [
                {"message_id": m, "message_type": "InspectSite", "received_at": received_at}
                for m in message_ids
            ],
        )
        await uow.commit()


async def published(runtime: ServiceRuntime, kind: type, *, caused_by: Envelope) -> Envelope:
    """The event the service published in answer to `caused_by` (the relay runs for real)."""
    transport: Any = runtime.transport
    subscription = transport.subscribe(f"test-{uuid.uuid4().hex}", [events_topic()])
    await subscription.start()
    for _ in range(200):
        for records in (await subscription.poll(0.1)).values():
            for record in records:
                envelope = Envelope.from_bytes(record.value)
                if envelope.type == kind.__name__ and envelope.causation_id == str(
                    caused_by.message_id
                ):
                    return envelope
    raise AssertionError(f"no {kind.__name__} published in answer to {caused_by.type}")


async def test_old_inbox_rows_go_and_a_redelivery_within_the_window_is_still_deduplicated(
    replication,
) -> None:
    runtime, _ = replication
    now = utcnow()
    old = [str(uuid.uuid4()) for _ in range(3)]
    await remembered(runtime, *old, received_at=now - 31 * DAY)
    # A command handled 20 days ago: a broker could still hold it (7 days of log retention
    # plus a 7-day segment), so the inbox must still know it.
    command = Envelope.wrap(inspect_site(), saga_id=str(uuid.uuid4()))
    await remembered(runtime, str(command.message_id), received_at=now - 20 * DAY)
    # The newest message the service handled, today.
    await remembered(runtime, str(uuid.uuid4()), received_at=now)

    deleted = await purge_inbox(runtime.uow, retention_days=30, now=now)

    assert deleted == 3
    assert await count(runtime, inbox, inbox.c.message_id.in_(old)) == 0
    assert await count(runtime, inbox) == 2
    handled = runtime.consumer.handled
    await deliver(runtime, command)  # redelivered: the worker must not inspect the site again
    assert runtime.consumer.handled == handled
    assert await count(runtime, inbox) == 2


async def test_an_idle_service_keeps_the_window_before_its_last_message(replication) -> None:
    """Embedded mode's durable log never expires what a stopped service has not committed: after
    40 days off, the last messages it handled may come again, so age counts from its newest."""
    runtime, _ = replication
    now = utcnow()
    last_handled = now - 40 * DAY
    await remembered(runtime, "before-the-window", received_at=last_handled - 31 * DAY)
    await remembered(runtime, "last-before-stop", received_at=last_handled)

    assert await purge_inbox(runtime.uow, retention_days=30, now=now) == 1
    assert await count(runtime, inbox, inbox.c.message_id == "last-before-stop") == 1


async def test_more_old_rows_than_one_batch_all_go(replication) -> None:
    runtime, _ = replication
    now = utcnow()
    await remembered(runtime, *(f"old-{n}" for n in range(250)), received_at=now - 40 * DAY)
    await remembered(runtime, *(f"new-{n}" for n in range(5)), received_at=now - 1 * DAY)

    assert await purge_inbox(runtime.uow, retention_days=30, now=now, batch=100) == 250
    assert await count(runtime, inbox) == 5
    assert await purge_inbox(runtime.uow, retention_days=30, now=now, batch=100) == 0


async def record_outcome(
    runtime: ServiceRuntime, key: str, outcome: Any, command: str = "InspectSite"
) -> None:
    async with runtime.uow() as uow:
        await uow.record_outcome(key, command, outcome)
        await uow.commit()


def inspected() -> SiteInspected:
    return SiteInspected(site="site-a", version="14.3.9000", replicated=False, partners=[])


async def test_a_purged_rotation_takes_its_finished_outcomes_and_nothing_else(
    replication,
) -> None:
    from replication.adapters.orm import retention_requests
    from replication.service_layer.retention import purge_rotation

    runtime, clock = replication
    purged, other = str(uuid.uuid4()), str(uuid.uuid4())
    await record_outcome(runtime, f"{purged}:inspect:1", inspected())
    await record_outcome(runtime, f"{purged}:break_replication:1", inspected())
    # Accepted and not finished: its answer is still to come, the key must stay known.
    await record_outcome(runtime, f"{purged}:restore_replication:1", None)
    # A person's confirmation is recorded without an answer (none is sent back): it is done,
    # not waiting, and goes with the rotation.
    confirmed = f"{confirmation_key_prefix(purged, 'task-1')}1"
    await record_outcome(runtime, confirmed, None, command="ConfirmOperatorTask")
    other_command = Envelope.wrap(inspect_site(other), saga_id=other)
    await record_outcome(runtime, inspect_site(other).idempotency_key, inspected())
    # A saga id that merely starts like the purged one is another rotation.
    await record_outcome(runtime, f"{purged}0:inspect:1", inspected())
    request = Envelope.wrap(
        PurgeRotationRecords(
            idempotency_key=f"{purged}:retention:replication",
            target_service="replication",
            ended_at=clock.now() - timedelta(days=31),
        ),
        saga_id=purged,
    )
    await deliver(runtime, request)

    assert (
        await purge_due(
            runtime,
            retention_requests,
            service="replication",
            retention_days=30,
            purge=purge_rotation,
        )
        == 1
    )

    keys = command_outcomes.c.idempotency_key
    assert await count(runtime, command_outcomes, keys.like(f"{purged}:%")) == 1
    assert await count(runtime, command_outcomes, keys == confirmed) == 0
    assert await count(runtime, command_outcomes, keys == f"{purged}:restore_replication:1") == 1
    assert await count(runtime, command_outcomes, keys == f"{purged}0:inspect:1") == 1
    answer = await published(runtime, RotationRecordsPurged, caused_by=request)
    # What went is said in the rotation's history: two answers, the confirmation and the
    # purge request itself.
    assert answer.payload["counts"]["command_outcomes"] == 4

    # The other rotation's command comes again (a re-send: same key, new message id): the
    # service answers with what it recorded, without inspecting the site a second time.
    again = Envelope.wrap(inspect_site(other), saga_id=other)
    assert again.message_id != other_command.message_id
    handled = runtime.consumer.handled
    await deliver(runtime, again)
    assert runtime.consumer.handled == handled
    replayed = await published(runtime, SiteInspected, caused_by=again)
    assert replayed.payload == inspected().model_dump(mode="json")


async def test_a_worker_forgets_old_messages_on_its_own_in_its_retention_loop(
    replication,
) -> None:
    """No one calls the purge: the service's retention loop does, from a replica's start on."""
    from replication.bootstrap import build_runtime

    runtime, clock = replication
    now = utcnow()
    await remembered(runtime, "handled-long-ago", received_at=now - 45 * DAY)
    await remembered(runtime, "handled-today", received_at=now)
    settings = runtime.settings.model_copy(update={"inbox_retention_days": 30})
    replica = build_runtime(settings, clock=clock)
    await replica.start(serve_http=False)
    try:
        for _ in range(300):
            if await count(runtime, inbox, inbox.c.message_id == "handled-long-ago") == 0:
                break
            await asyncio.sleep(0.05)
        assert await count(runtime, inbox) == 1
        assert await count(runtime, inbox, inbox.c.message_id == "handled-today") == 1
    finally:
        await replica.stop()
