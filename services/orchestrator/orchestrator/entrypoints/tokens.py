"""/v1/tokens: API tokens and their roles (admin); a token is shown once, stored hashed."""

from typing import Any

from fastapi import APIRouter, Response

from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.deps import Admin, AppDeps
from orchestrator.entrypoints.problems import problem
from orchestrator.service_layer import audit_log
from orchestrator.service_layer import tokens as service

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=201,
    responses={
        409: problem("A live token has this name already", "token_name_taken"),
        422: problem("An expiry that is not in the future", "expiry_in_past"),
    },
)
async def create_token(body: schemas.TokenIn, who: Admin, deps: AppDeps) -> dict[str, Any]:
    """The token is in this response only; it is stored hashed."""
    async with deps.rt.uow() as uow:
        token = await service.create_token(
            uow.session, name=body.name, role=body.role, by=who.name, now=deps.now(),
            expires_at=body.expires_at,
        )  # fmt: skip
        await audit_log.record(uow.session, actor=who.name, action="token.created",
                               target=token["id"], now=deps.now(),
                               detail={"name": body.name, "role": body.role,
                                       "expires_at": body.expires_at and
                                       body.expires_at.isoformat()})  # fmt: skip
        await uow.commit()
    return token


@router.get("")
async def list_tokens(_: Admin, deps: AppDeps) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return {"items": await service.list_tokens(uow.session)}


@router.delete(
    "/{token_id}",
    status_code=204,
    responses={409: problem("The last live admin token cannot be revoked", "last_admin_token")},
)
async def revoke_token(token_id: str, who: Admin, deps: AppDeps) -> Response:
    """Revoke a token at once; `bootstrap-admin` revokes the settings' admin token (once
    another admin token exists)."""
    async with deps.rt.uow() as uow:
        await service.revoke_token(
            uow.session, token_id, now=deps.now(), by=who.name,
            admin_token=deps.settings.admin_token.get_secret_value(),
        )  # fmt: skip
        await audit_log.record(uow.session, actor=who.name, action="token.revoked",
                               target=token_id, now=deps.now())  # fmt: skip
        await uow.commit()
    return Response(status_code=204)
