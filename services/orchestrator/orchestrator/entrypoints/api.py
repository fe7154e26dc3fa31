"""The REST API (FastAPI, /v1): routes translate HTTP into service-layer calls, nothing more."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from certrotate_shared.http import ProblemError, install_problem_handlers, problem_response
from orchestrator.domain.inputs import (
    ApprovalGiven,
    CancelRequested,
    DecisionMade,
    PauseRequested,
    ResumeRequested,
)
from orchestrator.entrypoints import audit, schemas, subscriptions, webhooks
from orchestrator.entrypoints.campaigns import campaigns_router
from orchestrator.entrypoints.dead_letters import dead_letters_router
from orchestrator.entrypoints.views import rotation_summary, rotation_view
from orchestrator.service_layer import audit_log, inventory, rotations, tasks, tokens
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.errors import ServiceError
from orchestrator.service_layer.tokens import Principal, Role

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime


def create_api(runtime: "ServiceRuntime", deps: Deps) -> FastAPI:
    deps.runtime = runtime
    app = FastAPI(
        title="certrotate orchestrator",
        version="1",
        description="Rotations of SEPM server certificates as durable sagas.",
    )
    install_problem_handlers(app, max_body_bytes=deps.settings.max_body_bytes)

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        extra = {"code": exc.code} if exc.code else {}
        return problem_response(exc.status, exc.title, exc.detail, **extra, **exc.extra)

    def role(needed: Role) -> Callable[..., Awaitable[Principal]]:
        async def check(authorization: Annotated[str | None, Header()] = None) -> Principal:
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ProblemError(401, "Unauthorized", "send Authorization: Bearer <API token>")
            async with runtime.uow() as uow:
                principal = await tokens.authenticate(
                    uow.session, token.strip(),
                    admin_token=deps.settings.admin_token.get_secret_value(),
                )  # fmt: skip
            if principal is None:
                raise ProblemError(401, "Unauthorized", "unknown or revoked API token")
            if not principal.may(needed):
                raise ProblemError(
                    403,
                    "Forbidden",
                    f"this action needs the {needed} role; token {principal.name!r} has {principal.role}",
                )
            return principal

        return check

    webhooks.install(app, deps, role)
    subscriptions.install(app, deps, role)
    audit.install(app, deps, role)

    Viewer = Annotated[Principal, Depends(role("viewer"))]
    Operator = Annotated[Principal, Depends(role("operator"))]
    Approver = Annotated[Principal, Depends(role("approver"))]
    Admin = Annotated[Principal, Depends(role("admin"))]

    async def view(saga_id: str) -> dict[str, Any]:
        state = await rotations.get_rotation(deps, saga_id)
        async with runtime.uow() as uow:
            open_tasks = await tasks.list_tasks(uow.session, rotation_id=saga_id, status=None)
        return rotation_view(state, now=deps.now(), tasks=open_tasks)

    # --- rotations ---

    @app.post("/v1/rotations", status_code=201, tags=["rotations"])
    async def create_rotation(
        body: schemas.RotationIn,
        response: Response,
        who: Operator,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> dict[str, Any]:
        """Pre-flight the certificate, then start the rotation saga."""
        upload = body.certificate
        state, created = await rotations.create_rotation(
            deps,
            site=body.site,
            upload=rotations.CertificateUpload(
                upload.format, upload.data_b64, upload.password, upload.key_b64
            ),
            options=rotations.authorize_options(
                rotations.with_operator_defaults(body.options.stored(), deps.settings),
                may_approve=who.may("approver"),
                settings=deps.settings,
            ),
            change_id=body.change_id,
            requested_by=who.name,
            principal=who.record(),
            budget_reason=body.orphan_risk_budget_reason,
            idempotency_key=idempotency_key,
            body=body.model_dump(mode="json"),
        )
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/v1/rotations/{state.saga_id}"
        return await view(state.saga_id)

    @app.get("/v1/rotations", tags=["rotations"])
    async def list_rotations(
        _: Viewer,
        state: Literal["running", "compensating", "paused", "completed", "compensated", "failed"]
        | None = None,
        site: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        change_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        items, next_cursor = await rotations.list_rotations(
            deps, status=state, site=site, cursor=cursor, limit=limit, change_id=change_id
        )
        return {"items": [rotation_summary(s) for s in items], "next_cursor": next_cursor}

    @app.get("/v1/rotations/{rotation_id}", tags=["rotations"])
    async def get_rotation(rotation_id: str, _: Viewer) -> dict[str, Any]:
        return await view(rotation_id)

    @app.get("/v1/rotations/{rotation_id}/events", tags=["rotations"])
    async def rotation_events(
        rotation_id: str,
        _: Viewer,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        items, next_after = await rotations.history(deps, rotation_id, after=after, limit=limit)
        return {"items": items, "next_after": next_after}

    @app.get("/v1/rotations/{rotation_id}/at-risk", tags=["rotations"], response_model=None)
    async def at_risk(
        rotation_id: str,
        _: Viewer,
        status: Literal["at_risk", "straggler", "pending"] = "at_risk",
        format: Literal["json", "csv"] = "json",
        watch_id: str | None = None,
    ) -> Response:
        media, content = await rotations.at_risk_clients(
            deps, rotation_id, status=status, fmt=format, watch_id=watch_id
        )
        return Response(content=content, media_type=media)

    @app.post("/v1/rotations/{rotation_id}/pause", tags=["rotations"])
    async def pause(
        rotation_id: str, who: Operator, body: schemas.PauseIn | None = None
    ) -> dict[str, Any]:
        await rotations.act(
            deps,
            rotation_id,
            PauseRequested(by=who.name, reason=(body or schemas.PauseIn()).reason),
        )
        return await view(rotation_id)

    @app.post("/v1/rotations/{rotation_id}/resume", tags=["rotations"])
    async def resume(rotation_id: str, who: Operator) -> dict[str, Any]:
        await rotations.act(deps, rotation_id, ResumeRequested(by=who.name))
        return await view(rotation_id)

    @app.post("/v1/rotations/{rotation_id}/cancel", tags=["rotations"])
    async def cancel(rotation_id: str, body: schemas.CancelIn, who: Operator) -> dict[str, Any]:
        await rotations.act(deps, rotation_id, CancelRequested(by=who.name, reason=body.reason))
        return await view(rotation_id)

    @app.post("/v1/rotations/{rotation_id}/approve", tags=["rotations"])
    async def approve(
        rotation_id: str, who: Approver, body: schemas.ApproveIn | None = None
    ) -> dict[str, Any]:
        await rotations.refuse_self_approval(deps, rotation_id, who.id)
        await rotations.act(
            deps,
            rotation_id,
            ApprovalGiven(by=who.name, note=(body or schemas.ApproveIn()).note, principal=who.id),
        )
        return await view(rotation_id)

    @app.post("/v1/rotations/{rotation_id}/decide", tags=["rotations"])
    async def decide(rotation_id: str, body: schemas.DecideIn, who: Operator) -> dict[str, Any]:
        if body.decision == "proceed" and not who.may("approver"):
            raise ProblemError(
                403, "Forbidden", "accepting at-risk clients (proceed) needs the approver role"
            )
        decision = DecisionMade(
            by=who.name, decision=body.decision, reason=body.reason, change_id=body.change_id,
            extend_days=body.extend_days, principal=who.id,
        )  # fmt: skip
        await rotations.decide_with_at_risk_list(deps, rotation_id, decision)
        return await view(rotation_id)

    # --- operator tasks ---

    @app.get("/v1/tasks", tags=["tasks"])
    async def list_tasks(
        _: Viewer,
        rotation_id: str | None = None,
        status: Literal["open", "confirmed", "done", "all"] | None = None,
    ) -> dict[str, Any]:
        async with runtime.uow() as uow:
            items = await tasks.list_tasks(uow.session, rotation_id=rotation_id, status=status)
        return {"items": items}

    @app.post("/v1/tasks/{task_id}/confirm", tags=["tasks"])
    async def confirm_task(
        task_id: str, who: Operator, body: schemas.TaskConfirmIn | None = None
    ) -> dict[str, Any]:
        async with runtime.uow() as uow:
            task = await tasks.confirm_task(
                uow,
                task_id,
                by=who.name,
                note=(body or schemas.TaskConfirmIn()).note,
                now=deps.now(),
            )
            await uow.commit()
        return task

    # --- inventory ---

    @app.post("/v1/sites", status_code=201, tags=["inventory"])
    async def create_site(body: schemas.SiteIn, who: Admin) -> dict[str, Any]:
        return await _put_site(body, who, "site.created")

    @app.put("/v1/sites/{name}", tags=["inventory"])
    async def replace_site(name: str, body: schemas.SiteIn, who: Admin) -> dict[str, Any]:
        if body.name != name:
            raise ProblemError(422, "Invalid request", "the body's name must match the path")
        return await _put_site(body, who, "site.replaced")

    async def _put_site(body: schemas.SiteIn, who: Principal, action: str) -> dict[str, Any]:
        spec = body.model_dump(exclude={"sepm_credentials", "host_ops_credentials"})
        inventory.check_site_policy(spec, rehearsal=deps.settings.rehearsal)
        async with runtime.uow() as uow:
            site = await inventory.put_site(
                uow.session,
                deps.vault,
                name=body.name,
                spec=spec,
                sepm_credentials=body.sepm_credentials.model_dump()
                if body.sepm_credentials
                else None,
                host_ops_credentials=body.host_ops_credentials.model_dump()
                if body.host_ops_credentials
                else None,
                now=deps.now(),
            )
            await audit_log.record(
                uow.session, actor=who.name, action=action, target=body.name, now=deps.now(),
                detail=audit_log.site_change(body.model_dump(mode="json")),
            )  # fmt: skip
            await uow.commit()
        return site

    @app.get("/v1/sites", tags=["inventory"])
    async def list_sites(_: Viewer) -> dict[str, Any]:
        async with runtime.uow() as uow:
            return {"items": await inventory.list_sites(uow.session)}

    @app.get("/v1/sites/{name}", tags=["inventory"])
    async def get_site(name: str, _: Viewer) -> dict[str, Any]:
        async with runtime.uow() as uow:
            return await inventory.get_site(uow.session, name)

    @app.delete("/v1/sites/{name}", status_code=204, tags=["inventory"])
    async def delete_site(name: str, who: Admin) -> Response:
        async with runtime.uow() as uow:
            await inventory.delete_site(uow.session, deps.vault, name)
            await audit_log.record(uow.session, actor=who.name, action="site.deleted", target=name,
                                   now=deps.now())  # fmt: skip
            await uow.commit()
        return Response(status_code=204)

    @app.post("/v1/servers", status_code=201, tags=["inventory"])
    async def create_server(body: schemas.ServerIn, who: Admin) -> dict[str, Any]:
        return await _put_server(body, who, "server.created")

    @app.put("/v1/servers/{name}", tags=["inventory"])
    async def replace_server(name: str, body: schemas.ServerIn, who: Admin) -> dict[str, Any]:
        if body.name != name:
            raise ProblemError(422, "Invalid request", "the body's name must match the path")
        return await _put_server(body, who, "server.replaced")

    async def _put_server(body: schemas.ServerIn, who: Principal, action: str) -> dict[str, Any]:
        async with runtime.uow() as uow:
            server = await inventory.put_server(
                uow.session, name=body.name, spec=body.model_dump(), now=deps.now()
            )
            await audit_log.record(uow.session, actor=who.name, action=action, target=body.name,
                                   now=deps.now(), detail=body.model_dump(mode="json"))  # fmt: skip
            await uow.commit()
        return server

    @app.get("/v1/servers", tags=["inventory"])
    async def list_servers(_: Viewer, site: str | None = None) -> dict[str, Any]:
        async with runtime.uow() as uow:
            return {"items": await inventory.list_servers(uow.session, site)}

    @app.get("/v1/servers/{name}", tags=["inventory"])
    async def get_server(name: str, _: Viewer) -> dict[str, Any]:
        async with runtime.uow() as uow:
            return await inventory.get_server(uow.session, name)

    @app.delete("/v1/servers/{name}", status_code=204, tags=["inventory"])
    async def delete_server(name: str, who: Admin) -> Response:
        async with runtime.uow() as uow:
            await inventory.delete_server(uow.session, name)
            await audit_log.record(uow.session, actor=who.name, action="server.deleted",
                                   target=name, now=deps.now())  # fmt: skip
            await uow.commit()
        return Response(status_code=204)

    # --- tokens ---

    @app.post("/v1/tokens", status_code=201, tags=["tokens"])
    async def create_token(body: schemas.TokenIn, who: Admin) -> dict[str, Any]:
        """The token is in this response only; it is stored hashed."""
        async with runtime.uow() as uow:
            token = await tokens.create_token(
                uow.session, name=body.name, role=body.role, by=who.name, now=deps.now()
            )
            await audit_log.record(uow.session, actor=who.name, action="token.created",
                                   target=token["id"], now=deps.now(),
                                   detail={"name": body.name, "role": body.role})  # fmt: skip
            await uow.commit()
        return token

    @app.get("/v1/tokens", tags=["tokens"])
    async def list_tokens(_: Admin) -> dict[str, Any]:
        async with runtime.uow() as uow:
            return {"items": await tokens.list_tokens(uow.session)}

    @app.delete("/v1/tokens/{token_id}", status_code=204, tags=["tokens"])
    async def revoke_token(token_id: str, who: Admin) -> Response:
        async with runtime.uow() as uow:
            await tokens.revoke_token(uow.session, token_id, now=deps.now())
            await audit_log.record(uow.session, actor=who.name, action="token.revoked",
                                   target=token_id, now=deps.now())  # fmt: skip
            await uow.commit()
        return Response(status_code=204)

    app.include_router(dead_letters_router(deps, role("operator")))
    app.include_router(campaigns_router(deps, role))

    return app
