"""What every service's HTTP API shares: RFC 9457 problem+json errors, health probes and
/metrics."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from certrotate_shared import metrics, tracing
from certrotate_shared.bodylimit import DEFAULT_MAX_BODY_BYTES, limit_request_bodies
from certrotate_shared.logs import log_context
from certrotate_shared.observability_settings import MetricsRole

# Re-exported: routes have always imported the problem+json helpers from here.
from certrotate_shared.problem import PROBLEM as PROBLEM
from certrotate_shared.problem import default_code as default_code
from certrotate_shared.problem import problem_response
from certrotate_shared.settings import ServiceSettings

# Answers a scrape's Authorization header for a least role: None, or (status, detail) to refuse.
MetricsAccess = Callable[[str | None, MetricsRole], Awaitable[tuple[int, str] | None]]

log = logging.getLogger(__name__)


class ProblemError(Exception):
    """An error a client can act on, sent as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers
        self.extra = extra


def install_problem_handlers(app: FastAPI, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Every error leaves as problem+json, validation errors with the fields at fault; request
    bodies above `max_body_bytes` are refused while they stream in."""
    limit_request_bodies(app, max_body_bytes)

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, type_=exc.type, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo input values back: a body can hold a password or a key.
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        fields = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
        return problem_response(422, "Invalid request", fields, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # Allow (RFC 9110): every method the path has, not one route's
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return problem_response(
            exc.status_code, _title(exc.status_code), str(exc.detail), headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s in API", type(exc).__name__, exc_info=exc)
        return problem_response(500, "Internal error", "the server failed; see its log")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route fully matches at this path (routes differ only by method)."""
    return [
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def _title(status: int) -> str:
    return {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        413: "Payload too large",
        415: "Unsupported media type",
        422: "Invalid request",
        429: "Too many requests",
    }.get(status, "Error")


def add_health_routes(
    app: FastAPI, *, service: str, readiness: Callable[[], Awaitable[list[str]]]
) -> None:
    """/healthz: the process answers; /readyz: `readiness` finds nothing wrong (the runtime's
    checks its database and its loops)."""

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], response_model=None)
    async def readyz() -> dict[str, Any] | JSONResponse:
        found = await readiness()
        if found:
            return problem_response(503, "Not ready", "; ".join(found))
        return {"status": "ready", "service": service}


def add_metrics_route(
    app: FastAPI, *, settings: ServiceSettings, metrics_access: MetricsAccess | None
) -> None:
    """/metrics in Prometheus' text format, for whoever settings.metrics_auth admits."""

    @app.get("/metrics", tags=["health"], response_class=Response, include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        if settings.metrics_auth == "internal_token":
            refusal = _internal_token_refusal(request, getattr(settings, "internal_token", None))
            if refusal is not None:
                return problem_response(401, "Unauthorized", refusal, code="metrics_unauthorized")
        elif settings.metrics_auth == "role":
            assert metrics_access is not None  # checked when the runtime was built
            denied = await metrics_access(
                request.headers.get("authorization"), settings.metrics_role
            )
            if denied is not None:
                status, detail = denied
                return problem_response(status, _title(status), detail, code="metrics_unauthorized")
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _internal_token_refusal(request: Request, token: Any) -> str | None:
    """Why a scrape without the internal token is refused; None when it carries it."""
    expected = token.get_secret_value().encode() if token is not None else b""
    if not expected:
        return "metrics_auth is internal_token but this service has no internal token set"
    sent = request.headers.get("x-certrotate-internal-token")
    if sent is None:
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        sent = value.strip() if scheme.lower() == "bearer" else None
    if sent is not None and hmac.compare_digest(sent.encode(), expected):
        return None
    return "send the internal token as Authorization: Bearer or X-Certrotate-Internal-Token"


class RequestContext:
    """Scopes the log fields a request binds (a rotation it advances) to that request, and
    traces it (a child of the caller's traceparent, if it sent one) when tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with log_context():
            if not tracing.enabled():
                await self.app(scope, receive, send)
                return
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope.get("headers", [])
                if k in (b"traceparent", b"tracestate")
            }
            method = scope.get("method", "")
            with tracing.span(f"{method}", kind=tracing.SERVER, parent=headers) as span:
                await self.app(scope, receive, send)
                route = scope.get("route")
                # The route's template, never the path: ids in a span name defeat grouping.
                if span is not None and route is not None:
                    span.update_name(f"{method} {getattr(route, 'path', '')}")
