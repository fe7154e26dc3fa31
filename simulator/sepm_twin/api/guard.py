"""What stands before every SEPM call: injected faults, the call-rate limit, the bearer token."""

from __future__ import annotations

import asyncio

from fastapi import Request

from sepm_twin.api.responses import SepmHTTPError
from sepm_twin.faults import HTTP_KINDS
from sepm_twin.site import Site
from sepm_twin.world import World

PUBLIC_PATHS = ("/version", "/identity/authenticate")


async def guard_request(request: Request, world: World, site: Site) -> None:
    path = request.url.path
    context = {
        "site": site.name,
        "server": request.scope.get("twin_server"),
        "method": request.method,
        "path": path,
    }
    fault = world.faults.fire(HTTP_KINDS, context)
    if fault is not None:
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay_s)
        elif fault.kind == "throttle":
            raise SepmHTTPError(
                429,
                fault.message or "Too many requests",
                {"Retry-After": str(fault.retry_after_s)},
            )
        elif fault.kind == "token_expiry":
            site.tokens.expire_all()
        else:
            raise SepmHTTPError(fault.status, fault.message or "Internal server error")
    wait = site.rate_limit.take()
    if wait is not None:
        raise SepmHTTPError(429, "Too many requests", {"Retry-After": str(wait)})
    if path.endswith(PUBLIC_PATHS):
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or not site.tokens.valid(token.strip()):
        raise SepmHTTPError(401, "Unauthorized: the token is missing, invalid or expired")
