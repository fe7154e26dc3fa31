"""/v1/tasks: the steps an operator does by hand (a manual site), listed and confirmed."""

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import AppDeps, Operator, Viewer
from orchestrator.entrypoints.paging import PAGED, Cursor, Limit, link_next
from orchestrator.entrypoints.problems import problem
from orchestrator.service_layer import tasks as service

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


class TaskOut(BaseModel):
    """A step a person does on a SEPM host (a manual site); the worker then checks it."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    rotation_id: str
    service: str
    site: str
    server: str | None
    title: str
    instructions: str
    verification: str
    status: str
    requested_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    last_failure: str | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page")


@router.get("", response_model=TaskPage, responses=PAGED)
async def list_tasks(
    _: Viewer,
    deps: AppDeps,
    request: Request,
    response: Response,
    rotation_id: str | None = None,
    status: Literal["open", "confirmed", "done", "all"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Open and confirmed tasks by default (`status=all`: every one), oldest first, a page at a
    time."""
    async with deps.rt.uow() as uow:
        items, next_cursor = await service.page_tasks(
            uow.session, rotation_id=rotation_id, status=status, cursor=cursor, limit=limit
        )
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/{task_id}/confirm",
    response_model=TaskOut,
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
            now=deps.clock.now(),
        )
        await uow.commit()
    return task
