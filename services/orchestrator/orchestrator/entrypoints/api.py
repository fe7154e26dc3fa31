"""The REST API (FastAPI, /v1): one router per resource; routes translate HTTP into service-layer
calls, nothing more. A new route goes into its resource's module (or a new one listed here)."""

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from certrotate_shared.http import install_problem_handlers, problem_response
from orchestrator.entrypoints import (
    audit,
    bundles,
    rotation_clients,
    rotations,
    servers,
    sites,
    subscriptions,
    tasks,
    tokens,
    webhooks,
)
from orchestrator.entrypoints.campaigns import campaigns_router
from orchestrator.entrypoints.conditional import AnswerCache
from orchestrator.entrypoints.dashboard import router as dashboard_router
from orchestrator.entrypoints.dead_letters import dead_letters_router
from orchestrator.entrypoints.deps import role
from orchestrator.entrypoints.problems import document_problems
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.errors import ServiceError
from orchestrator.service_layer.verified_tokens import VerifiedTokens

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime


def create_api(runtime: "ServiceRuntime", deps: Deps) -> FastAPI:
    deps.runtime = runtime
    app = FastAPI(
        title="certrotate orchestrator",
        version="1",
        description="Rotations of SEPM server certificates as durable sagas.",
    )
    app.state.deps = deps
    app.state.answers = AnswerCache()
    app.state.verified_tokens = VerifiedTokens(deps.settings.auth_cache_seconds)
    install_problem_handlers(app, max_body_bytes=deps.settings.max_body_bytes)

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        extra: dict[str, Any] = {"code": exc.code} if exc.code else {}
        return problem_response(exc.status, exc.title, exc.detail, **extra, **exc.extra)

    # Order matters where paths overlap: /v1/webhooks/sources before /v1/webhooks/{source}.
    webhooks.install(app, deps, role)
    subscriptions.install(app, deps, role)
    audit.install(app, deps, role)
    for router in (rotations.router, rotation_clients.router, tasks.router, sites.router,
                   servers.router, tokens.router, bundles.router):  # fmt: skip
        app.include_router(router)
    app.include_router(dead_letters_router(deps, role("operator")))
    app.include_router(campaigns_router(deps, role))
    app.include_router(dashboard_router)
    document_problems(app)
    return app
