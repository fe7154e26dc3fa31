"""Sagas, their history and their timers in the database; every save checks the version."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Dialect,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from certrotate_shared.db import asyncpg_connection
from certrotate_shared.utc_timestamps import as_utc
from orchestrator.adapters.orm import saga_history, sagas, timers
from orchestrator.adapters.saga_saves import ConcurrentUpdateError, queued
from orchestrator.domain.state import SagaState

_BLANK_ENTRY: dict[str, Any] = {
    "step": None, "message_id": None, "causation_id": None, "actor": None, "detail": None,
}  # fmt: skip


def to_db(moment: datetime) -> datetime:
    """Timestamps are stored in UTC (SQLite keeps no zone, so every value must agree on one)."""
    return moment.astimezone(UTC)


# The pair of to_db, under the name this service's modules read it by.
from_db = as_utc


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[str]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise ValueError("invalid cursor") from None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise ValueError("invalid cursor")
    return parts


# Hot-path statements (every transition), built once with bound parameters.
class _SerializedJSON(TypeDecorator[Any]):
    """A JSON column value the caller already serialized (pydantic writes it in one pass)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


# The state as its JSON text, for pydantic to parse in one pass.
_GET = select(cast(sagas.c.state, Text).label("state"), sagas.c.version).where(
    sagas.c.saga_id == bindparam("_saga_id")
)
_GET_MANY = select(
    sagas.c.saga_id, cast(sagas.c.state, Text).label("state"), sagas.c.version
).where(sagas.c.saga_id.in_(bindparam("_saga_ids", expanding=True)))
# session.info key: the sagas a batch's transaction read ahead, saga id -> (state JSON,
# version), or None for an id that is no saga; each entry is used once and dropped on a write.
_READ_AHEAD = "orchestrator.sagas_read_ahead"
_COLUMNS = ("site", "status", "step", "created_at", "updated_at", "version")
_SAVE = (
    update(sagas)
    .where(sagas.c.saga_id == bindparam("_saga_id"), sagas.c.version == bindparam("_version"))
    .values(
        {c: bindparam(c) for c in _COLUMNS} | {"state": bindparam("state", type_=_SerializedJSON())}
    )
)
_DELETE_TIMERS = delete(timers).where(timers.c.saga_id == bindparam("_saga_id"))
_DELETE_SAGAS_TIMERS = delete(timers).where(
    timers.c.saga_id.in_(bindparam("_saga_ids", expanding=True))
)
_INSERT_TIMERS = insert(timers)
_INSERT_HISTORY = insert(saga_history)

# PostgreSQL: the same statements for asyncpg itself (db.asyncpg_connection), which costs a
# fifth of SQLAlchemy's CPU per statement; SQLite keeps the ones above.
_PG_GET = "SELECT state::text, version FROM sagas WHERE saga_id = $1"
_PG_GET_MANY = "SELECT saga_id, state::text, version FROM sagas WHERE saga_id = ANY($1::varchar[])"
_PG_SAVE = """UPDATE sagas SET site = $1, status = $2, step = $3, created_at = $4,
    updated_at = $5, version = $6, state = $7::json WHERE saga_id = $8 AND version = $9"""
_PG_DELETE_TIMERS = "DELETE FROM timers WHERE saga_id = ANY($1::varchar[])"
_PG_INSERT_TIMERS = """INSERT INTO timers (saga_id, kind, due_at)
    SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[])"""
# In the order given (the ids say in which order a saga's entries happened).
_PG_INSERT_HISTORY = """INSERT INTO saga_history
    (saga_id, at, kind, type, step, message_id, causation_id, actor, detail)
    SELECT s, a, k, t, st, m, c, ac, d::json FROM unnest(
        $1::varchar[], $2::timestamptz[], $3::varchar[], $4::varchar[], $5::varchar[],
        $6::varchar[], $7::varchar[], $8::varchar[], $9::text[]
    ) WITH ORDINALITY AS u(s, a, k, t, st, m, c, ac, d, n) ORDER BY n"""


class SagaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def read_ahead(self, saga_ids: Iterable[str]) -> None:
        """Read these sagas in one round trip for the get() calls that follow (a batch of
        events); once per transaction (`saga_ids` is not even iterated after the first)."""
        if _READ_AHEAD in self.session.info:
            return
        found: dict[str, tuple[str, int] | None] = dict.fromkeys(saga_ids)
        if found:
            driver = await asyncpg_connection(self.session)
            if driver is not None:
                rows: Any = await driver.fetch(_PG_GET_MANY, list(found))
            else:
                rows = await self.session.execute(_GET_MANY, {"_saga_ids": list(found)})
            found |= {r[0]: (r[1], r[2]) for r in rows}
        self.session.info[_READ_AHEAD] = found

    async def get(self, saga_id: str) -> tuple[SagaState, int] | None:
        saved = queued(self.session, saga_id)  # saved earlier in this transaction
        if saved is not None:
            return SagaState.model_validate_json(saved[0]), saved[1]
        ahead: dict[str, tuple[str, int] | None] = self.session.info.get(_READ_AHEAD, {})
        if saga_id in ahead:
            known = ahead.pop(saga_id)
            return None if known is None else (SagaState.model_validate_json(known[0]), known[1])
        driver = await asyncpg_connection(self.session)
        if driver is not None:
            row: Any = await driver.fetchrow(_PG_GET, saga_id)
        else:
            row = (await self.session.execute(_GET, {"_saga_id": saga_id})).first()
        if row is None:
            return None
        return SagaState.model_validate_json(row[0]), row[1]

    def _forget_read_ahead(self, saga_id: str) -> None:
        self.session.info.get(_READ_AHEAD, {}).pop(saga_id, None)

    async def add(self, state: SagaState) -> None:
        self._forget_read_ahead(state.saga_id)
        await self.session.execute(
            insert(sagas).values(**self._columns(state), change_id=state.change_id, version=1)
        )

    async def save(self, state: SagaState, version: int) -> None:
        self._forget_read_ahead(state.saga_id)
        columns = self._columns(state, serialized=True)
        del columns["saga_id"]
        driver = await asyncpg_connection(self.session)
        if driver is not None:
            status = await driver.execute(
                _PG_SAVE,
                *(columns[c] for c in _COLUMNS if c != "version"),
                version + 1,
                columns["state"],
                state.saga_id,
                version,
            )
            saved = status == "UPDATE 1"
        else:
            result = await self.session.execute(
                _SAVE,
                {**columns, "version": version + 1, "_saga_id": state.saga_id, "_version": version},
            )
            saved = result.rowcount == 1  # type: ignore[attr-defined]
        if not saved:
            raise ConcurrentUpdateError(f"saga {state.saga_id} changed since version {version}")

    def _columns(self, state: SagaState, *, serialized: bool = False) -> dict[str, Any]:
        return {
            "saga_id": state.saga_id,
            "site": state.site,
            "status": state.status,
            "step": state.step,
            "state": state.model_dump_json() if serialized else state.model_dump(mode="json"),
            "created_at": to_db(state.created_at),
            "updated_at": to_db(state.updated_at),
        }

    async def sync_timers(self, state: SagaState) -> None:
        """The timers table mirrors the saga's timers: it only says which sagas to wake when."""
        await self.session.execute(_DELETE_TIMERS, {"_saga_id": state.saga_id})
        if state.timers:
            await self.session.execute(
                _INSERT_TIMERS,
                [
                    {"saga_id": state.saga_id, "kind": kind, "due_at": to_db(due)}
                    for kind, due in state.timers.items()
                ],
            )

    async def replace_timers(self, by_saga: dict[str, dict[str, datetime]]) -> None:
        """Make the timers of these sagas exactly the given ones."""
        if not by_saga:
            return
        driver = await asyncpg_connection(self.session)
        if driver is not None:
            await driver.execute(_PG_DELETE_TIMERS, list(by_saga))
            due = [(s, k, to_db(d)) for s, pending in by_saga.items() for k, d in pending.items()]
            if due:
                await driver.execute(_PG_INSERT_TIMERS, *(list(c) for c in zip(*due, strict=True)))
            return
        await self.session.execute(_DELETE_SAGAS_TIMERS, {"_saga_ids": list(by_saga)})
        rows = [
            {"saga_id": saga_id, "kind": kind, "due_at": to_db(due)}
            for saga_id, pending in by_saga.items()
            for kind, due in pending.items()
        ]
        if rows:
            await self.session.execute(_INSERT_TIMERS, rows)

    async def record(self, saga_id: str, entries: Sequence[dict[str, Any]]) -> None:
        await self.record_many([(saga_id, entries)])

    async def record_many(self, batch: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> None:
        """History entries of one or more sagas, in the given order, in one statement."""
        rows = [
            {**_BLANK_ENTRY, "saga_id": saga_id, **e, "at": to_db(e["at"])}
            for saga_id, entries in batch
            for e in entries
        ]
        if not rows:
            return
        driver = await asyncpg_connection(self.session)
        if driver is None:
            await self.session.execute(_INSERT_HISTORY, rows)
            return
        # As SQLAlchemy's JSON column writes it (json.dumps; None as JSON null).
        await driver.execute(
            _PG_INSERT_HISTORY,
            *(
                [r[c] for r in rows]
                for c in ("saga_id", "at", "kind", "type", "step", "message_id", "causation_id")
            ),
            [r["actor"] for r in rows],
            [json.dumps(r["detail"]) for r in rows],
        )

    async def page(
        self,
        *,
        status: str | None,
        site: str | None,
        cursor: str | None,
        limit: int,
        change_id: str | None = None,
    ) -> tuple[list[SagaState], str | None]:
        query = select(sagas.c.state, sagas.c.created_at, sagas.c.saga_id)
        if change_id:
            query = query.where(sagas.c.change_id == change_id)
        if status:
            query = query.where(sagas.c.status == status)
        if site:
            query = query.where(sagas.c.site == site)
        if cursor:
            created, saga_id = decode_cursor(cursor)
            at = to_db(datetime.fromisoformat(created))
            query = query.where(
                or_(
                    sagas.c.created_at < at,
                    and_(sagas.c.created_at == at, sagas.c.saga_id < saga_id),
                )
            )
        query = query.order_by(sagas.c.created_at.desc(), sagas.c.saga_id.desc()).limit(limit + 1)
        rows = (await self.session.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = (
            encode_cursor(from_db(rows[-1].created_at).isoformat(), rows[-1].saga_id)
            if more
            else None
        )
        return [SagaState.model_validate(r.state) for r in rows], next_cursor

    async def history(
        self, saga_id: str, *, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        rows = (
            await self.session.execute(
                select(saga_history)
                .where(saga_history.c.saga_id == saga_id, saga_history.c.id > after)
                .order_by(saga_history.c.id)
                .limit(limit + 1)
            )
        ).all()
        more = len(rows) > limit
        items = [
            {
                "seq": r.id,
                "at": from_db(r.at),
                "kind": r.kind,
                "type": r.type,
                "step": r.step,
                "message_id": r.message_id,
                "causation_id": r.causation_id,
                "actor": r.actor,
                "detail": r.detail,
            }
            for r in rows[:limit]
        ]
        return items, (items[-1]["seq"] if more else None)

    async def claim_due_timer(self, now: datetime, *, postgres: bool) -> str | None:
        """One saga with a due timer, locked against other replicas (PostgreSQL)."""
        query = (
            select(timers.c.saga_id)
            .where(timers.c.due_at <= to_db(now))
            .order_by(timers.c.due_at)
            .limit(1)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def next_due(self) -> datetime | None:
        due = (await self.session.execute(select(func.min(timers.c.due_at)))).scalar_one_or_none()
        return from_db(due) if due is not None else None
