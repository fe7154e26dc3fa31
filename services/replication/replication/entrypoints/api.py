"""The replication service's HTTP API: read-only views of its operations and records."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from certrotate_shared.http import ProblemError, install_problem_handlers
from certrotate_shared.internal_api import InternalTokenMiddleware
from certrotate_shared.runtime import ServiceRuntime
from replication.adapters import broken_partnerships, repository


def create_api(runtime: ServiceRuntime) -> FastAPI:
    app = FastAPI(title="certrotate replication", version="1")
    install_problem_handlers(app)
    settings: Any = runtime.settings
    app.add_middleware(InternalTokenMiddleware, token=settings.internal_token)

    @app.get("/v1/operations/{op_key}")
    async def get_operation(op_key: str) -> dict[str, Any]:
        """A Break/RestoreReplication command by its idempotency key, and where it stands."""
        async with runtime.sessions() as session:
            view = await repository.operation_view(session, op_key)
        if view is None:
            raise ProblemError(404, "Not found", f"no replication operation {op_key!r}")
        return view

    @app.get("/v1/broken-partnerships")
    async def list_broken_partnerships(
        saga_id: str | None = None, site: str | None = None
    ) -> dict[str, Any]:
        """Exactly which partnerships each saga broke, and whether they are restored."""
        async with runtime.sessions() as session:
            rows = await broken_partnerships.broken_partnerships_of(
                session, saga_id=saga_id, site=site
            )
        return {"items": rows}

    return app
