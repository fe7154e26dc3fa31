"""/v1/servers: the management servers of each site, the names clients reach them by, and ports."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from certrotate_shared.http import ProblemError
from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import Admin, AppDeps, Viewer
from orchestrator.entrypoints.paging import PAGED, Cursor, Limit, link_next
from orchestrator.entrypoints.problems import Responses, problem
from orchestrator.service_layer import audit_log, management_servers
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal

router = APIRouter(prefix="/v1/servers", tags=["inventory"])


class ServerOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    site: str
    address: str
    hostnames: list[str]
    version: str
    ports: dict[str, int] = Field(description="SEPM listener -> port")
    created_at: datetime
    updated_at: datetime


class ServerPage(BaseModel):
    items: list[ServerOut]
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page")


_PUT: Responses = {
    422: problem(
        "Unknown site, or the server does not list every SEPM TLS port",
        "unknown_site", "tls_ports_missing",
    ),
}  # fmt: skip


@router.post("", status_code=201, response_model=ServerOut, responses=_PUT)
async def create_server(body: schemas.ServerIn, who: Admin, deps: AppDeps) -> dict[str, Any]:
    return await _put_server(deps, body, who, "server.created")


@router.put(
    "/{name}",
    response_model=ServerOut,
    responses={
        **_PUT,
        409: problem("The body names another server than the path", "name_mismatch"),
    },
)
async def replace_server(
    name: str, body: schemas.ServerIn, who: Admin, deps: AppDeps
) -> dict[str, Any]:
    if body.name != name:
        raise ProblemError(
            409, "Conflict", "the body's name must match the path", code="name_mismatch"
        )
    return await _put_server(deps, body, who, "server.replaced")


async def _put_server(
    deps: Deps, body: schemas.ServerIn, who: Principal, action: str
) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        server = await management_servers.put_server(
            uow.session, deps.vault, name=body.name, spec=body.model_dump(), now=deps.clock.now()
        )
        await audit_log.record(uow.session, actor=who.name, action=action, target=body.name,
                               now=deps.clock.now(), detail=body.model_dump(mode="json"))  # fmt: skip
        await uow.commit()
    return server


@router.get("", response_model=ServerPage, responses=PAGED)
async def list_servers(
    _: Viewer,
    deps: AppDeps,
    request: Request,
    response: Response,
    site: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Management servers by name (of `site`, or all), a page at a time."""
    async with deps.rt.uow() as uow:
        items, next_cursor = await management_servers.page_servers(
            uow.session, site, cursor=cursor, limit=limit
        )
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{name}", response_model=ServerOut)
async def get_server(name: str, _: Viewer, deps: AppDeps) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return await management_servers.get_server(uow.session, name)


@router.delete("/{name}", status_code=204)
async def delete_server(name: str, who: Admin, deps: AppDeps) -> Response:
    async with deps.rt.uow() as uow:
        await management_servers.delete_server(uow.session, deps.vault, name)
        await audit_log.record(uow.session, actor=who.name, action="server.deleted",
                               target=name, now=deps.clock.now())  # fmt: skip
        await uow.commit()
    return Response(status_code=204)
