"""/v1/servers: the management servers of each site, the names clients reach them by, and ports."""

from typing import Any

from fastapi import APIRouter, Response

from certrotate_shared.http import ProblemError
from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import Admin, AppDeps, Viewer
from orchestrator.entrypoints.problems import Responses, problem
from orchestrator.service_layer import audit_log, inventory
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal

router = APIRouter(prefix="/v1/servers", tags=["inventory"])

_PUT: Responses = {
    422: problem(
        "Unknown site, or the server does not list every SEPM TLS port",
        "unknown_site", "tls_ports_missing",
    ),
}  # fmt: skip


@router.post("", status_code=201, responses=_PUT)
async def create_server(body: schemas.ServerIn, who: Admin, deps: AppDeps) -> dict[str, Any]:
    return await _put_server(deps, body, who, "server.created")


@router.put(
    "/{name}",
    responses={
        **_PUT,
        409: problem("The body names another " + "server" + " than the path", "name_mismatch"),
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
        server = await inventory.put_server(
            uow.session, deps.vault, name=body.name, spec=body.model_dump(), now=deps.now()
        )
        await audit_log.record(uow.session, actor=who.name, action=action, target=body.name,
                               now=deps.now(), detail=body.model_dump(mode="json"))  # fmt: skip
        await uow.commit()
    return server


@router.get("")
async def list_servers(_: Viewer, deps: AppDeps, site: str | None = None) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return {"items": await inventory.list_servers(uow.session, site)}


@router.get("/{name}")
async def get_server(name: str, _: Viewer, deps: AppDeps) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return await inventory.get_server(uow.session, name)


@router.delete("/{name}", status_code=204)
async def delete_server(name: str, who: Admin, deps: AppDeps) -> Response:
    async with deps.rt.uow() as uow:
        await inventory.delete_server(uow.session, deps.vault, name)
        await audit_log.record(uow.session, actor=who.name, action="server.deleted",
                               target=name, now=deps.now())  # fmt: skip
        await uow.commit()
    return Response(status_code=204)
