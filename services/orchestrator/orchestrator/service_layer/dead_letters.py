"""Messages parked in the DLQ: stored when a consumer reports them, listed, replayed once.

A replay re-publishes the stored envelope (same message id: the consumer that parked it never
recorded it as handled) to its original topic, through the outbox, in the transaction that
records it. A command is replayed only while its rotation still waits for it: replaying one the
rotation has moved past would repeat a step (a certificate install, a partner delete).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.envelope import Command, Envelope, UnknownMessageError, message_class
from certrotate_shared.messages.certificates import PurgeCertificateBundle
from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters.orm import dead_letters
from orchestrator.adapters.repository import SagaRepository, from_db, to_db
from orchestrator.domain.history import OperatorActed
from orchestrator.domain.inputs import ActionRejectedError, ReplayRequested
from orchestrator.service_layer.errors import ConflictError, NotFoundError
from orchestrator.service_layer.transitions import advance, record_history

# Commands that only clean up after a rotation: safe to replay once the rotation has ended.
_CLEANUP = {PurgeCertificateBundle.type_name(), CancelPropagationWatch.type_name()}


async def record_dead_letter(
    session: AsyncSession, report: MessageDeadLettered, *, saga_id: str, now: datetime
) -> None:
    values = {
        "saga_id": saga_id,
        "service": report.service,
        "message_id": report.message_id,
        "message_type": report.message_type,
        "idempotency_key": report.idempotency_key,
        "topic": report.topic,
        "partition": report.partition,
        "offset": report.offset,
        "attempts": report.attempts,
        "error": report.error,
        "envelope": report.envelope,
        "reported_at": to_db(now),
    }
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(dead_letters)
    await session.execute(stmt.values(values).on_conflict_do_nothing())


def dead_letter_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "rotation_id": row.saga_id or None,
        "service": row.service,
        "message_id": row.message_id,
        "message_type": row.message_type,
        "idempotency_key": row.idempotency_key,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "attempts": row.attempts,
        "error": row.error,
        "reported_at": from_db(row.reported_at),
        "replayed_at": from_db(row.replayed_at) if row.replayed_at else None,
        "replayed_by": row.replayed_by,
    }


async def list_dead_letters(
    session: AsyncSession, *, rotation_id: str | None, status: str
) -> list[dict[str, Any]]:
    query = select(dead_letters).order_by(dead_letters.c.id)
    if rotation_id:
        query = query.where(dead_letters.c.saga_id == rotation_id)
    if status == "parked":
        query = query.where(dead_letters.c.replayed_at.is_(None))
    elif status == "replayed":
        query = query.where(dead_letters.c.replayed_at.is_not(None))
    return [dead_letter_view(r) for r in (await session.execute(query)).all()]


async def _row(session: AsyncSession, dead_letter_id: str) -> Any:
    # Ids are 64-bit integers (str.isdigit() would also pass "²", and 20 digits overflow).
    if not re.fullmatch(r"[0-9]{1,18}", dead_letter_id):
        raise NotFoundError(f"no dead letter {dead_letter_id!r}")
    row = (
        await session.execute(select(dead_letters).where(dead_letters.c.id == int(dead_letter_id)))
    ).first()
    if row is None:
        raise NotFoundError(f"no dead letter {dead_letter_id!r}")
    return row


async def replay(uow: UnitOfWork, dead_letter_id: str, *, by: str, now: datetime) -> dict[str, Any]:
    """Put the parked message back on its topic, once, and tell its rotation."""
    session = uow.session
    row = await _row(session, dead_letter_id)
    # An UPDATE answers a CursorResult (it has rowcount); execute() is typed as Result.
    claimed = cast(
        CursorResult[Any],
        await session.execute(
            update(dead_letters)
            .where(dead_letters.c.id == row.id, dead_letters.c.replayed_at.is_(None))
            .values(replayed_at=to_db(now), replayed_by=by)
        ),
    )
    if claimed.rowcount != 1:
        raise ConflictError(
            f"dead letter {dead_letter_id} was already replayed", code="already_replayed"
        )
    envelope = Envelope.model_validate(row.envelope)
    loaded = await SagaRepository(session).get(row.saga_id) if row.saga_id else None
    if loaded is not None and not loaded[0].terminal:
        action = ReplayRequested(
            by=by, dead_letter_id=str(row.id), message_id=row.message_id,
            message_type=row.message_type, causation_id=envelope.causation_id,
        )  # fmt: skip
        try:
            await advance(uow, row.saga_id, action, now, loaded=loaded, actor=by)
        except ActionRejectedError as exc:
            raise ConflictError(str(exc), code="replay_not_awaited") from None
    else:
        if _is_command(envelope) and envelope.type not in _CLEANUP:
            raise ConflictError(
                f"rotation {row.saga_id or '(none)'} has ended or is unknown: replaying"
                f" {envelope.type} would act for nobody",
                code="replay_not_awaited",
            )
        if row.saga_id:
            record_history(uow, row.saga_id, [_replay_entry(row, by, now)])
    uow.republish(envelope, row.topic)
    return dead_letter_view(await _row(session, dead_letter_id))


def _is_command(envelope: Envelope) -> bool:
    try:
        return issubclass(message_class(envelope.type, envelope.version), Command)
    except UnknownMessageError:
        return True  # unknown: treat it as one that may have side effects


def _replay_entry(row: Any, by: str, now: datetime) -> OperatorActed:
    return OperatorActed(
        at=now, type="ReplayRequested", actor=by, message_id=row.message_id,
        detail={"dead_letter_id": str(row.id), "message_type": row.message_type},
    )  # fmt: skip
