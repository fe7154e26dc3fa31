"""/v1/sites: the SEPM sites certrotate may rotate, with their stored credentials (admin writes)."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from certrotate_shared.http import ProblemError
from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import Admin, AppDeps, Viewer
from orchestrator.entrypoints.paging import PAGED, Cursor, Limit, link_next
from orchestrator.entrypoints.problems import Responses, problem
from orchestrator.service_layer import audit_log, inventory, site_policy
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal

router = APIRouter(prefix="/v1/sites", tags=["inventory"])


class HostOpsOut(BaseModel):
    driver: str
    endpoint: str | None


class SiteOut(BaseModel):
    """A site as stored; its passwords are never shown, only whether they are set."""

    model_config = ConfigDict(extra="allow")
    name: str
    api_url: str
    version: str
    replication_partners: list[str]
    trusted_certificates_count: int
    host_ops: HostOpsOut
    tags: list[str] = Field(default_factory=list)
    maintenance_window: dict[str, Any] | None = None
    credentials_set: bool
    host_ops_credentials_set: bool
    servers: list[str] = Field(description="Its management servers' names")
    created_at: datetime
    updated_at: datetime


class SitePage(BaseModel):
    items: list[SiteOut]
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page")


_PUT: Responses = {
    422: problem(
        "The site breaks a policy: https api_url, credentials (again when the endpoint moves), "
        "parseable trust PEMs, no twin driver outside a rehearsal",
        "https_required", "credentials_required", "invalid_trust_pem", "twin_driver_refused",
    ),
}  # fmt: skip


@router.post("", status_code=201, response_model=SiteOut, responses=_PUT)
async def create_site(body: schemas.SiteIn, who: Admin, deps: AppDeps) -> dict[str, Any]:
    return await _put_site(deps, body, who, "site.created")


@router.put(
    "/{name}",
    response_model=SiteOut,
    responses={
        **_PUT,
        409: problem("The body names another site than the path", "name_mismatch"),
    },
)
async def replace_site(
    name: str, body: schemas.SiteIn, who: Admin, deps: AppDeps
) -> dict[str, Any]:
    if body.name != name:
        raise ProblemError(
            409, "Conflict", "the body's name must match the path", code="name_mismatch"
        )
    return await _put_site(deps, body, who, "site.replaced")


async def _put_site(
    deps: Deps, body: schemas.SiteIn, who: Principal, action: str
) -> dict[str, Any]:
    spec = body.model_dump(exclude={"sepm_credentials", "host_ops_credentials"})
    site_policy.check_site_policy(spec, rehearsal=deps.settings.rehearsal)
    async with deps.rt.uow() as uow:
        site = await inventory.put_site(
            uow.session,
            deps.vault,
            name=body.name,
            spec=spec,
            sepm_credentials=body.sepm_credentials.model_dump() if body.sepm_credentials else None,
            host_ops_credentials=body.host_ops_credentials.model_dump()
            if body.host_ops_credentials
            else None,
            now=deps.clock.now(),
        )
        await audit_log.record(
            uow.session, actor=who.name, action=action, target=body.name, now=deps.clock.now(),
            detail=audit_log.site_change(body.model_dump(mode="json")),
        )  # fmt: skip
        await uow.commit()
    return site


@router.get("", response_model=SitePage, responses=PAGED)
async def list_sites(
    _: Viewer,
    deps: AppDeps,
    request: Request,
    response: Response,
    tag: schemas.SiteTag | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Sites by name (or those carrying `tag`), a page at a time: follow `next_cursor` or the
    `Link` header. Filtered by tag, a page may hold fewer than `limit` sites."""
    async with deps.rt.uow() as uow:
        items, next_cursor = await inventory.page_sites(uow.session, cursor=cursor, limit=limit)
    link_next(request, response, next_cursor)
    items = [s for s in items if tag is None or tag in s["tags"]]
    return {"items": items, "next_cursor": next_cursor}


@router.put("/{name}/tags", response_model=SiteOut)
async def set_tags(
    name: str, body: schemas.SiteTagsIn, who: Admin, deps: AppDeps
) -> dict[str, Any]:
    """Replace the site's tags alone (nothing else of the site is sent again or changed)."""
    async with deps.rt.uow() as uow:
        site = await inventory.set_tags(uow.session, name, body.tags, now=deps.clock.now())
        await audit_log.record(uow.session, actor=who.name, action="site.tags_set", target=name,
                               now=deps.clock.now(), detail={"tags": site["tags"]})  # fmt: skip
        await uow.commit()
    return site


@router.get("/{name}", response_model=SiteOut)
async def get_site(name: str, _: Viewer, deps: AppDeps) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return await inventory.get_site(uow.session, name)


@router.delete("/{name}", status_code=204)
async def delete_site(name: str, who: Admin, deps: AppDeps) -> Response:
    async with deps.rt.uow() as uow:
        await inventory.delete_site(uow.session, deps.vault, name)
        await audit_log.record(uow.session, actor=who.name, action="site.deleted", target=name,
                               now=deps.clock.now())  # fmt: skip
        await uow.commit()
    return Response(status_code=204)
