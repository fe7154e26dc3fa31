"""Reads of one rotation for the API, cheap enough for a dashboard polling many of them.

What the rotation view shows changes only when the saga's version moves (every transition
saves a new one), when one of its operator tasks changes, or, for a rotation with a
maintenance window, when the clock opens or closes the window. A `RotationStamp` reads exactly
those (the version, the window as stored, the open tasks) without loading the saga's state, so
an unchanged rotation is answered 304 and an answer is built once per change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import operator_tasks, saga_history, sagas
from orchestrator.adapters.repository import SagaRepository, from_db
from orchestrator.domain.state import MaintenanceWindow, SagaState
from orchestrator.domain.window import is_open, next_opening
from orchestrator.service_layer import tasks
from orchestrator.service_layer.errors import NotFoundError

# The saga's version and window with its open tasks, in one statement (one row per open task,
# or one row with no task): a poll is one round trip to the database.
_STAMP = (
    select(
        sagas.c.version,
        sagas.c.state[("options", "maintenance_window")].label("window"),
        *operator_tasks.c,
    )
    .select_from(
        sagas.outerjoin(
            operator_tasks,
            (operator_tasks.c.saga_id == sagas.c.saga_id) & tasks.OPEN_OR_CONFIRMED,
        )
    )
    .where(sagas.c.saga_id == bindparam("_saga_id"))
    .order_by(*tasks.IN_ORDER_ASKED)
)
# The history's last entry, and whether the rotation exists (None: it does not).
_LAST_ENTRY = select(
    select(func.coalesce(func.max(saga_history.c.id), 0))
    .where(saga_history.c.saga_id == bindparam("_saga_id"))
    .scalar_subquery()
).where(select(sagas.c.saga_id).where(sagas.c.saga_id == bindparam("_saga_id")).exists())


@dataclass(frozen=True)
class RotationStamp:
    """What the rotation view depends on besides the saga's state itself."""

    version: int
    window: MaintenanceWindow | None
    open_tasks: list[dict[str, Any]]

    def tag(self, now: datetime, *, revision: str) -> str:
        """A strong entity tag: equal tags, byte-equal views (for this view `revision`)."""
        opens = None
        if self.window is not None:
            opens = "open" if is_open(self.window, now) else next_opening(self.window, now)
        varying = json.dumps([revision, opens, self.open_tasks], default=str, sort_keys=True)
        digest = hashlib.blake2b(varying.encode(), digest_size=8).hexdigest()
        return f'"{self.version}.{digest}"'

    def at(self, state: SagaState, version: int) -> RotationStamp:
        """The same stamp for a state read later (the saga moved on in between)."""
        return RotationStamp(version, state.options.maintenance_window, self.open_tasks)


async def rotation_stamp(session: AsyncSession, saga_id: str) -> RotationStamp:
    rows = (await session.execute(_STAMP, {"_saga_id": saga_id})).all()
    if not rows:
        raise NotFoundError(f"no rotation {saga_id!r}")
    open_tasks = [tasks.task_view(r) for r in rows if r.task_id is not None]
    window = MaintenanceWindow.model_validate(rows[0].window) if rows[0].window else None
    return RotationStamp(rows[0].version, window, open_tasks)


async def rotation_state(session: AsyncSession, saga_id: str) -> tuple[SagaState, int]:
    loaded = await SagaRepository(session).get(saga_id)
    if loaded is None:
        raise NotFoundError(f"no rotation {saga_id!r}")
    return loaded


async def history_tag(session: AsyncSession, saga_id: str) -> tuple[str, int]:
    """The strong entity tag of the rotation's history, and its last entry's position.

    The history only grows: its last entry names every page of it."""
    last = (await session.execute(_LAST_ENTRY, {"_saga_id": saga_id})).scalar()
    if last is None:
        raise NotFoundError(f"no rotation {saga_id!r}")
    return f'"h{last}"', last


async def history_page(
    session: AsyncSession, saga_id: str, *, after: int, limit: int, last: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the rotation's history up to entry `last` (that of its tag), so that an
    entry written meanwhile waits for the next read rather than making two different answers
    carry one tag."""
    rows = (
        await session.execute(
            select(saga_history)
            .where(
                saga_history.c.saga_id == saga_id,
                saga_history.c.id > after,
                saga_history.c.id <= last,
            )
            .order_by(saga_history.c.id)
            .limit(limit + 1)
        )
    ).all()
    items = [history_entry(r) for r in rows[:limit]]
    return items, (items[-1]["seq"] if len(rows) > limit else None)


def history_entry(row: Any) -> dict[str, Any]:
    return {
        "seq": row.id, "at": from_db(row.at), "kind": row.kind, "type": row.type,
        "step": row.step, "message_id": row.message_id, "causation_id": row.causation_id,
        "actor": row.actor, "detail": row.detail,
    }  # fmt: skip
