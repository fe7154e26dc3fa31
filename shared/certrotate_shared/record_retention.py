"""A worker's own retention of a rotation's records.

Only the orchestrator knows that a rotation has ended: a worker's operation can close weeks
before its rotation does (the break at step 1, the watch at step 3), and purging it then would
lose what the restore or the gate still needs. So the orchestrator's retention job tells each
worker (PurgeRotationRecords: the rotation and when it ended), and the worker purges its
records once its own retention, counted from that same end, is over too. The request is kept
in the worker's table until then, so a longer worker retention, a restart or a second replica
loses nothing; each purge is answered with RotationRecordsPurged for the rotation's history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import Envelope
from certrotate_shared.message_retention import purge_inbox_logged, purge_rotation_outcomes
from certrotate_shared.messages.retention import PurgeRotationRecords, RotationRecordsPurged

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

Worker = Literal["replication", "client-monitor"]
BATCH = 200


def retention_days_field() -> Any:
    """The `retention_days` setting of a worker (the same meaning as the orchestrator's)."""
    return Field(
        default=30.0,
        gt=0,
        description=(
            "This service's records of a rotation are purged this many days after the "
            "rotation ended, once the orchestrator's retention job has reported the end (so "
            "never before the orchestrator's own retention_days either)."
        ),
    )


def retention_interval_field() -> Any:
    return Field(
        default=3600.0,
        gt=0,
        description="How often (real seconds) this service looks for records past retention.",
    )


def requests_table(metadata: MetaData) -> Table:
    """The rotations the orchestrator reported ended, until this service purged them."""
    return Table(
        "retention_requests",
        metadata,
        Column("saga_id", String(200), primary_key=True),
        Column("ended_at", DateTime(timezone=True), nullable=False),
        # The PurgeRotationRecords envelope: the causation of the answer.
        Column("command", Text, nullable=False),
        Column("requested_at", DateTime(timezone=True), nullable=False),
        Column("purged_at", DateTime(timezone=True)),
    )


@dataclass(frozen=True)
class Purged:
    """Rows deleted per table, and what was kept on purpose (said in the rotation's history)."""

    counts: dict[str, int] = field(default_factory=dict)
    kept: str = ""


# Purges one rotation's records in the caller's transaction; None: still in use, try later.
PurgeRotation = Callable[[AsyncSession, str], Awaitable[Purged | None]]


async def record_request(
    session: AsyncSession, table: Table, envelope: Envelope, *, now: datetime
) -> None:
    """Keep the orchestrator's PurgeRotationRecords until the purge is due (once per saga)."""
    message = envelope.message()
    assert isinstance(message, PurgeRotationRecords)
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(
        saga_id=envelope.saga_id,
        ended_at=message.ended_at,
        command=envelope.model_dump_json(),
        requested_at=now,
        purged_at=None,
    )
    await session.execute(stmt.on_conflict_do_nothing())


async def purge_due(
    runtime: ServiceRuntime,
    table: Table,
    *,
    service: Worker,
    retention_days: float,
    purge: PurgeRotation,
) -> int:
    """Purge every reported rotation whose end is `retention_days` past; how many."""
    now = runtime.clock.now()
    cutoff = now - timedelta(days=retention_days)
    async with runtime.uow() as uow:
        rows = (
            await uow.session.execute(
                select(table.c.saga_id, table.c.command)
                .where(table.c.purged_at.is_(None), table.c.ended_at <= cutoff)
                .order_by(table.c.ended_at)
                .limit(BATCH)
            )
        ).all()
    done = 0
    for row in rows:
        async with runtime.uow() as uow:
            # Claimed in the purge's own transaction: a second replica skips it.
            claimed = await uow.session.execute(
                update(table)
                .where(table.c.saga_id == row.saga_id, table.c.purged_at.is_(None))
                .values(purged_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            purged = await purge(uow.session, row.saga_id)
            if purged is None:
                log.warning("rotation %s: records still in use; purge later", row.saga_id)
                continue  # rolled back: the request stays
            request = Envelope.model_validate_json(row.command)
            outcomes = await purge_rotation_outcomes(
                uow.session, row.saga_id, finished=[_key(request)]
            )
            purged = Purged({**purged.counts, "command_outcomes": outcomes}, purged.kept)
            answer = RotationRecordsPurged(service=service, counts=purged.counts, kept=purged.kept)
            uow.emit(answer, saga_id=row.saga_id, causation=request)
            await uow.commit()
        done += 1
        log.info("rotation %s: purged %s after retention", row.saga_id, purged.counts)
    return done


def _key(request: Envelope) -> str:
    """The purge request's own key: recorded as accepted, concluded by this purge."""
    message = request.message()
    assert isinstance(message, PurgeRotationRecords)
    return message.idempotency_key


async def run_purges(
    runtime: ServiceRuntime,
    table: Table,
    *,
    service: Worker,
    retention_days: float,
    interval_s: float,
    purge: PurgeRotation,
) -> None:
    """Background loop: the rotations past retention, then the inbox past its own window
    (each on its own, so that one failing never stops the other)."""
    while True:
        try:
            await purge_due(
                runtime, table, service=service, retention_days=retention_days, purge=purge
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("purging records past retention failed; trying again later")
        try:
            await purge_inbox_logged(
                runtime.uow, retention_days=runtime.settings.inbox_retention_days
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("purging the inbox failed; trying again later")
        await asyncio.sleep(interval_s)
