"""/v1/tasks: the steps an operator does by hand (a manual site), listed and confirmed."""

from typing import Any, Literal

from fastapi import APIRouter

from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import AppDeps, Operator, Viewer
from orchestrator.entrypoints.problems import problem
from orchestrator.service_layer import tasks as service

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


@router.get("")
async def list_tasks(
    _: Viewer,
    deps: AppDeps,
    rotation_id: str | None = None,
    status: Literal["open", "confirmed", "done", "all"] | None = None,
) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        items = await service.list_tasks(uow.session, rotation_id=rotation_id, status=status)
    return {"items": items}


@router.post(
    "/{task_id}/confirm",
    responses={409: problem("The task is not open (confirmed or done already)", "conflict")},
)
async def confirm_task(
    task_id: str, who: Operator, deps: AppDeps, body: schemas.TaskConfirmIn | None = None
) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        task = await service.confirm_task(
            uow,
            task_id,
            by=who.name,
            note=(body or schemas.TaskConfirmIn()).note,
            now=deps.now(),
        )
        await uow.commit()
    return task
