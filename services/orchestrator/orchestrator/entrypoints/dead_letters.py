"""/v1/dead-letters: messages a consumer parked in the DLQ, and their replay (operators)."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from orchestrator.entrypoints.problems import problem
from orchestrator.service_layer import dead_letters
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal


class DeadLetterOut(BaseModel):
    id: str
    rotation_id: str | None
    service: str
    message_id: str
    message_type: str
    idempotency_key: str | None
    topic: str
    partition: int
    offset: int
    attempts: int
    error: str
    reported_at: datetime
    replayed_at: datetime | None
    replayed_by: str | None


class DeadLettersOut(BaseModel):
    items: list[DeadLetterOut]


def dead_letters_router(deps: Deps, operator: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """The routes, guarded by the API's operator-role dependency."""
    router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])
    Operator = Annotated[Principal, Depends(operator)]

    @router.get("", response_model=DeadLettersOut)
    async def list_dead_letters(
        _: Operator,
        rotation_id: str | None = None,
        status: Literal["parked", "replayed", "all"] = "parked",
    ) -> DeadLettersOut:
        """Parked messages (by default those not replayed yet), oldest first."""
        async with deps.rt.uow() as uow:
            items = await dead_letters.list_dead_letters(
                uow.session, rotation_id=rotation_id, status=status
            )
        return DeadLettersOut.model_validate({"items": items})

    @router.post(
        "/{dead_letter_id}/replay",
        response_model=DeadLetterOut,
        responses={
            409: problem(
                "Replayed already, or its rotation no longer waits for it",
                "already_replayed",
                "replay_not_awaited",
            )
        },
    )
    async def replay_dead_letter(dead_letter_id: str, who: Operator) -> DeadLetterOut:
        """Re-publish the parked message to its original topic, once, and tell its rotation."""
        async with deps.rt.uow() as uow:
            replayed = await dead_letters.replay(
                uow, dead_letter_id, by=who.name, now=deps.clock.now()
            )
            await uow.commit()
        deps.alarm.ring()
        return DeadLetterOut.model_validate(replayed)

    return router
