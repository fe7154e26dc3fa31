"""Routes of the audit log (admin): read it page by page, or export it as JSON lines."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from orchestrator.entrypoints.deps import MAX_ID
from orchestrator.service_layer import audit_log as audit
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal, Role

RoleCheck = Callable[[Role], Callable[..., Awaitable[Principal]]]


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_after: int | None


def install(app: FastAPI, deps: Deps, role: RoleCheck) -> None:
    app.include_router(_router(deps, role))


def _router(deps: Deps, role: RoleCheck) -> APIRouter:
    router = APIRouter(tags=["audit"])
    Admin = Annotated[Principal, Depends(role("admin"))]

    @router.get("/v1/audit", response_model=AuditPage)
    async def read(
        _: Admin,
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        action: Annotated[str | None, Query(max_length=60)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        """Changes to inventory, tokens, subscriptions and webhook sources, oldest first
        (`action` matches a prefix: `site.`, `token.revoked`)."""
        async with deps.rt.uow() as uow:
            items, next_after = await audit.page(
                uow.session, after=after, limit=limit, action=action, actor=actor
            )
        return {"items": items, "next_after": next_after}

    @router.get(
        "/v1/audit/export",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-ndjson": {}},
                         "description": "One JSON object a line"}},
    )  # fmt: skip
    async def export(
        _: Admin,
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        action: Annotated[str | None, Query(max_length=60)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> StreamingResponse:
        """The whole log (or what follows `after`) as JSON lines, for a SIEM or an archive."""

        async def lines() -> AsyncIterator[bytes]:
            async with deps.rt.uow() as uow:
                async for line in audit.json_lines(
                    uow.session, after=after, action=action, actor=actor
                ):
                    yield line

        return StreamingResponse(
            lines(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="certrotate-audit.jsonl"'},
        )

    return router
