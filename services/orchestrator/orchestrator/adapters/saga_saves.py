"""PostgreSQL: the saga saves of one transaction in one statement.

A batch of events is one transaction of many transitions, and each used to save its saga
with an UPDATE of its own: the one statement a transition sent on its own. Here the saves are
queued and written together, with the same version check (a saga another transaction changed
since this one read it fails the whole statement, as the single UPDATE failed the transition).

Nothing in the transaction may read a stale saga meanwhile: a queued saga is read back from
the queue (SagaRepository.get), and any other statement through the session (whatever it may
read, the sagas table included) first writes the queue. The queue is written at the latest
just before the commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util import await_only

from certrotate_shared.db import asyncpg_connection
from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.domain.state import SagaState


class ConcurrentUpdateError(RuntimeError):
    """Another transition of the same saga committed first; the caller retries from a reload."""


# Sorted by saga id: two transactions that save the same sagas lock them in the same order.
_PG_SAVE_MANY = """UPDATE sagas AS s SET site = u.site, status = u.status, step = u.step,
    created_at = u.created_at, updated_at = u.updated_at, version = u.version,
    state = u.state::json
FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::timestamptz[],
            $6::timestamptz[], $7::int[], $8::text[], $9::int[])
    AS u(saga_id, site, status, step, created_at, updated_at, version, state, read_version)
WHERE s.saga_id = u.saga_id AND s.version = u.read_version
RETURNING s.saga_id"""

# session.info keys: the queue, and the flag that the session's statements write it first.
_QUEUE = "orchestrator.saga_saves"
_WATCHED = "orchestrator.saga_saves_watched"


@dataclass(frozen=True)
class _Queued:
    row: tuple[Any, ...]  # site, status, step, created_at, updated_at, version, state JSON
    read_version: int  # the version this transaction read: the check


@dataclass
class _Queue:
    driver: Any  # the transaction's asyncpg connection (certrotate_shared.db)
    sagas: dict[str, _Queued] = field(default_factory=dict)


async def save_later(uow: UnitOfWork, state: SagaState, version: int) -> bool:
    """Queue the saga's save (PostgreSQL); False on SQLite, where the caller saves it now."""
    session = uow.session
    driver = await asyncpg_connection(session)
    if driver is None:
        return False
    queue: _Queue = session.info.setdefault(_QUEUE, _Queue(driver))
    earlier = queue.sagas.get(state.saga_id)
    queue.sagas[state.saga_id] = _Queued(
        (
            state.site,
            state.status,
            state.step,
            state.created_at,  # timestamptz: the instant, whatever the zone
            state.updated_at,
            version + 1,
            state.model_dump_json(),
        ),
        earlier.read_version if earlier else version,
    )
    if not session.info.get(_WATCHED):
        session.info[_WATCHED] = True
        event.listen(session.sync_session, "do_orm_execute", _write_before_statement)
    # Again on every save: a handler may have run the deferred writes early (flush_deferred).
    uow.defer(_QUEUE, lambda: write(session))
    return True


def queued(session: AsyncSession, saga_id: str) -> tuple[str, int] | None:
    """The saga as this transaction last saved it, not yet written: (state JSON, version)."""
    queue: _Queue | None = session.info.get(_QUEUE)
    entry = queue.sagas.get(saga_id) if queue else None
    return None if entry is None else (entry.row[6], entry.row[5])


async def write(session: AsyncSession) -> None:
    await _write(session.info)


async def _write(info: dict[str, Any]) -> None:
    queue: _Queue | None = info.pop(_QUEUE, None)
    if queue is None or not queue.sagas:
        return
    ids = sorted(queue.sagas)
    columns = list(zip(*(queue.sagas[i].row for i in ids), strict=True))
    saved = await queue.driver.fetch(
        _PG_SAVE_MANY, ids, *columns, [queue.sagas[i].read_version for i in ids]
    )
    if len(saved) != len(ids):
        changed = sorted(set(ids) - {r[0] for r in saved})
        raise ConcurrentUpdateError(f"sagas changed since this transaction read them: {changed}")


def _write_before_statement(orm_execute_state: ORMExecuteState) -> None:
    """Before any statement through the session: what it reads must see the queued saves."""
    session: Session = orm_execute_state.session
    if session.info.get(_QUEUE):
        await_only(_write(session.info))
