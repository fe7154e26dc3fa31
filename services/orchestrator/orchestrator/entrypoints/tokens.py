"""/v1/tokens: API tokens and their roles (admin); a token is shown once, stored hashed."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import Admin, AppDeps
from orchestrator.entrypoints.paging import PAGED, Cursor, Limit, link_next
from orchestrator.entrypoints.problems import problem
from orchestrator.service_layer import audit_log
from orchestrator.service_layer import tokens as service
from orchestrator.service_layer.verified_tokens import VerifiedTokens

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


class TokenOut(BaseModel):
    """A token's record; the token itself is stored hashed and never shown again."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    expires_at: datetime | None = None


class NewTokenOut(TokenOut):
    token: str = Field(description="The bearer token: in this answer only")


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page")


@router.post(
    "",
    status_code=201,
    response_model=NewTokenOut,
    responses={
        409: problem("A live token has this name already", "token_name_taken"),
        422: problem("An expiry that is not in the future", "expiry_in_past"),
    },
)
async def create_token(body: schemas.TokenIn, who: Admin, deps: AppDeps) -> dict[str, Any]:
    """The token is in this response only; it is stored hashed."""
    async with deps.rt.uow() as uow:
        token = await service.create_token(
            uow.session, name=body.name, role=body.role, by=who.name, now=deps.clock.now(),
            expires_at=body.expires_at,
        )  # fmt: skip
        await audit_log.record(uow.session, actor=who.name, action="token.created",
                               target=token["id"], now=deps.clock.now(),
                               detail={"name": body.name, "role": body.role,
                                       "expires_at": body.expires_at and
                                       body.expires_at.isoformat()})  # fmt: skip
        await uow.commit()
    return token


@router.get("", response_model=TokenPage, responses=PAGED)
async def list_tokens(
    _: Admin,
    deps: AppDeps,
    request: Request,
    response: Response,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Tokens (revoked ones too) in the order they were made, a page at a time."""
    async with deps.rt.uow() as uow:
        items, next_cursor = await service.page_tokens(uow.session, cursor=cursor, limit=limit)
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.delete(
    "/{token_id}",
    status_code=204,
    responses={409: problem("The last live admin token cannot be revoked", "last_admin_token")},
)
async def revoke_token(token_id: str, who: Admin, deps: AppDeps, request: Request) -> Response:
    """Revoke a token at once; `bootstrap-admin` revokes the settings' admin token (once
    another admin token exists)."""
    async with deps.rt.uow() as uow:
        await service.revoke_token(
            uow.session, token_id, now=deps.clock.now(), by=who.name,
            admin_token=deps.settings.admin_token.get_secret_value(),
        )  # fmt: skip
        await audit_log.record(uow.session, actor=who.name, action="token.revoked",
                               target=token_id, now=deps.clock.now())  # fmt: skip
        await uow.commit()
    verified: VerifiedTokens = request.app.state.verified_tokens
    verified.forget_all()  # refused here from now on (other replicas: auth_cache_seconds)
    return Response(status_code=204)
