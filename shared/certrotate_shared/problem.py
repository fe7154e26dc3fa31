"""An RFC 9457 problem+json response: the one shape every error leaves certrotate's APIs in.

Its own module so that the middleware below the routes (the body limit) and the routes' error
handlers (http.py) both build it without importing each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    502: "upstream_failed",
    503: "unavailable",
}


def default_code(status: int) -> str:
    """The `code` of an error that has none more precise: one per status."""
    return _CODES.get(status, "error")


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json answer; without a `code` of its own it gets the status's default one."""
    extra.setdefault("code", default_code(status))
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)
