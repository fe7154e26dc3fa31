"""The control-plane application: the twin's API, plus each site's SEPM API under /sites/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from sepm_twin.api.agent import HostAgent
from sepm_twin.api.control import build_control_router
from sepm_twin.api.host_agent import build_host_agent_router
from sepm_twin.api.responses import host_error
from sepm_twin.world import HostError, World


def build_control_app(
    *,
    world: World,
    agent: HostAgent,
    site_apps: dict[str, Any],
    control_url: Callable[[], str],
) -> FastAPI:
    app = FastAPI(title="SEPM twin", version="1")

    @app.exception_handler(HostError)
    async def _host_error(_request: Request, exc: HostError) -> Response:
        return host_error(exc.status, exc.code, exc.message)

    app.include_router(build_control_router(world, control_url))
    app.include_router(build_host_agent_router(agent))
    # A convenience for benchmarks and debugging: each site's SEPM API in plain HTTP.
    for name, site_app in site_apps.items():
        app.mount(f"/sites/{name}", site_app)
    return app
