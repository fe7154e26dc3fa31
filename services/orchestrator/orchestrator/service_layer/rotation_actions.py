"""Rotations once requested: read them, and apply an operator's action (pause, resume,
cancel, approve, decide) through the saga's own decisions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from certrotate_shared.clock import Clock
from orchestrator.adapters.orm import saga_history
from orchestrator.adapters.repository import ConcurrentUpdateError, SagaRepository
from orchestrator.domain.inputs import ActionRejectedError, OperatorAction
from orchestrator.domain.state import SagaState
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import (
    ConflictError,
    ForbiddenError,
    InputRejectedError,
    NotFoundError,
)
from orchestrator.service_layer.transitions import advance


async def refuse_self_approval(saga_id: str, approver_token_id: str, *, db: Database) -> None:
    """Four eyes: the token that requested a rotation cannot approve it."""
    async with db() as uow:
        detail = (
            await uow.session.execute(
                select(saga_history.c.detail).where(
                    saga_history.c.saga_id == saga_id,
                    saga_history.c.type == "RotationRequested",
                )
            )
        ).scalar_one_or_none()
    requester = (detail or {}).get("principal") or {}
    if requester.get("token_id") == approver_token_id:
        raise ForbiddenError(
            "the token that requested this rotation cannot approve it; another approver must",
            code="self_approval",
        )


async def get_rotation(saga_id: str, *, db: Database) -> SagaState:
    async with db() as uow:
        loaded = await SagaRepository(uow.session).get(saga_id)
    if loaded is None:
        raise NotFoundError(f"no rotation {saga_id!r}")
    return loaded[0]


async def act(
    saga_id: str,
    action: OperatorAction,
    *,
    db: Database,
    clock: Clock,
    alarm: TimerAlarm,
    detail: dict[str, Any] | None = None,
) -> SagaState:
    """Apply an operator action; 409 when it makes no sense in the rotation's state."""
    for _ in range(5):
        try:
            async with db() as uow:
                decision = await advance(uow, saga_id, action, clock.now(), detail=detail)
                if decision is None:
                    raise NotFoundError(f"no rotation {saga_id!r}")
                await uow.commit()
            alarm.ring()
            return decision.state
        except ActionRejectedError as exc:
            raise ConflictError(str(exc), code="action_not_possible") from None
        except ConcurrentUpdateError:
            continue  # an event moved the saga meanwhile: decide again on the new state
    raise ConflictError("the rotation is changing too fast; try again", code="busy")


async def list_rotations(
    *,
    db: Database,
    status: str | None,
    site: str | None,
    cursor: str | None,
    limit: int,
    change_id: str | None = None,
) -> tuple[list[SagaState], str | None]:
    async with db() as uow:
        try:
            return await SagaRepository(uow.session).page(
                status=status, site=site, cursor=cursor, limit=limit, change_id=change_id
            )
        except ValueError as exc:
            raise InputRejectedError(str(exc), code="invalid_cursor") from None
