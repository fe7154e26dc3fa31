"""How long the messaging tables remember: the inbox by age, command outcomes by rotation.

The outbox deletes its own rows once they are sent. The inbox (message ids already handled)
and the recorded command outcomes (answers replayed to a re-sent command) would otherwise grow
for ever, and each guards something different, so each goes its own way:

- An inbox row protects against the transport delivering the same message again. Kafka can do
  so only while it still holds the record (after an offset reset, aiokafka's consumer here
  starts from the earliest record the broker has), so a row may go once it is older than
  anything the broker keeps, with a margin (`inbox_retention_days`, refused below
  INBOX_RETENTION_FLOOR_DAYS). Age is wall-clock time, as the inbox stamps it and as Kafka
  expires records, even when the service's clock is accelerated.
- A recorded outcome answers the same command sent again, which the orchestrator does as long
  as the rotation lives (a deadline re-send, a resumed saga); so the outcomes go with the
  rotation's records, when the service purges those, except one still accepted and not
  finished.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import utcnow
from certrotate_shared.messages.operator_tasks import ConfirmOperatorTask
from certrotate_shared.tables import command_outcomes, inbox
from certrotate_shared.utc_timestamps import as_utc

if TYPE_CHECKING:
    from certrotate_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# What deploy/ runs Kafka with: no log.retention.* or log.roll.* set, so the broker's defaults.
# Records expire a whole segment at a time, once the segment's NEWEST record is older than
# log.retention.hours (168), and a segment takes records for up to log.roll.hours (168); the
# oldest record of a segment may so be read for 14 days (plus the 5-minute retention check).
KAFKA_LOG_RETENTION_DAYS = 7
KAFKA_LOG_ROLL_DAYS = 7
INBOX_RETENTION_FLOOR_DAYS = KAFKA_LOG_RETENTION_DAYS + KAFKA_LOG_ROLL_DAYS
INBOX_RETENTION_DEFAULT_DAYS = 30.0
# Rows per DELETE: each batch is its own short transaction, so a purge of millions of rows
# never holds a long lock against the consumers inserting new ones.
INBOX_BATCH = 2000


def inbox_retention_days_field() -> Any:
    """The `inbox_retention_days` setting every service has."""
    return Field(
        default=INBOX_RETENTION_DEFAULT_DAYS,
        description=(
            "Days this service remembers a message it handled (its inbox), to ignore it if "
            "the broker delivers it again; counted from the newest message it handled, so a "
            "stopped service forgets nothing meanwhile. It must outlast what the broker can "
            "redeliver: Kafka, as deploy/ runs it (log.retention.hours and log.roll.hours left "
            "at 168), keeps a record up to 14 days, and an offset reset replays everything it "
            f"keeps; below {INBOX_RETENTION_FLOOR_DAYS} days is refused. The default (30) "
            "leaves a margin over that; raise it with the broker's retention plus its segment "
            "roll time if those are longer."
        ),
    )


def check_inbox_retention_days(days: float) -> float:
    """Refuse a window a broker could outlast: the message would be handled twice."""
    if not days >= INBOX_RETENTION_FLOOR_DAYS:  # NaN too
        raise ValueError(
            f"must be at least {INBOX_RETENTION_FLOOR_DAYS} days: Kafka can deliver a message "
            f"again for up to {INBOX_RETENTION_FLOOR_DAYS} days (log.retention.hours + "
            "log.roll.hours, 168 each by default), and a message the inbox has forgotten "
            "would be handled twice"
        )
    if math.isinf(days):
        raise ValueError("must be a finite number of days")
    return days


async def purge_inbox(
    uow: Callable[[], UnitOfWork],
    *,
    retention_days: float,
    now: datetime | None = None,
    batch: int = INBOX_BATCH,
) -> int:
    """Delete inbox rows older than the window, `batch` rows per transaction; how many.

    The window ends at the newest message handled, if that is earlier than `now`: embedded
    mode's log never expires what a stopped service had not committed, so its last messages
    may come again however long it was stopped."""
    now = now or utcnow()
    async with uow() as unit:
        newest = (await unit.session.execute(select(func.max(inbox.c.received_at)))).scalar()
    if newest is None:
        return 0
    cutoff = min(now, as_utc(newest)) - timedelta(days=retention_days)
    deleted = 0
    while True:
        async with uow() as unit:
            oldest = (
                select(inbox.c.message_id)
                .where(inbox.c.received_at < cutoff)
                .order_by(inbox.c.received_at)
                .limit(batch)
            )
            done = await unit.session.execute(delete(inbox).where(inbox.c.message_id.in_(oldest)))
            await unit.commit()
        rows: int = done.rowcount  # type: ignore[attr-defined]
        deleted += rows
        if rows < batch:
            return deleted
        await asyncio.sleep(0)  # let the consumer's transactions through between batches


async def purge_inbox_logged(uow: Callable[[], UnitOfWork], *, retention_days: float) -> int:
    """purge_inbox on the wall clock, with the log line an operator reads."""
    deleted = await purge_inbox(uow, retention_days=retention_days)
    if deleted:
        log.info(
            "inbox: forgot %d message(s) handled more than %g days ago", deleted, retention_days
        )
    return deleted


def rotation_key_prefix(saga_id: str) -> str:
    """Every idempotency key of a rotation's commands starts with this (the design's "saga id +
    step + attempt"; tests/unit/orchestrator/test_command_keys.py holds the saga to it)."""
    return f"{saga_id}:"


# Commands whose handling sends no answer back, so that their outcome is recorded NULL once
# they are done: a person's confirmation of an operator task (what the service then observes
# is answered by the work it resumes, under that work's own key).
ANSWERED_BY_NOTHING = (ConfirmOperatorTask.__name__,)


async def purge_rotation_outcomes(
    session: AsyncSession, saga_id: str, *, finished: Collection[str] = ()
) -> int:
    """Delete a rotation's recorded command outcomes in the caller's transaction; how many.

    One recorded as accepted and not finished (NULL) stays, unless its key is in `finished`
    (a command the caller itself has just concluded, such as the purge request) or its kind is
    never answered at all (a NULL there means done, not waiting)."""
    prefix = rotation_key_prefix(saga_id)
    key = command_outcomes.c.idempotency_key
    # An exact comparison, not LIKE: no wildcard or case folding (SQLite) can reach another
    # rotation's keys.
    done = await session.execute(
        delete(command_outcomes).where(
            func.substr(key, 1, len(prefix)) == prefix,
            or_(
                command_outcomes.c.outcome_type.is_not(None),
                command_outcomes.c.command_type.in_(ANSWERED_BY_NOTHING),
                key.in_(list(finished)),
            ),
        )
    )
    return int(done.rowcount)  # type: ignore[attr-defined]
