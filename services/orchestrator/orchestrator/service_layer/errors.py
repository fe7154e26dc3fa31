"""Errors the service layer raises for the API to translate (each names what to fix)."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.extra = extra


class InputRejectedError(ServiceError):
    status = 422
    title = "Invalid request"


class ForbiddenError(ServiceError):
    status = 403
    title = "Forbidden"


class NotFoundError(ServiceError):
    status = 404
    title = "Not found"


class ConflictError(ServiceError):
    status = 409
    title = "Conflict"


class UpstreamError(ServiceError):
    status = 502
    title = "Upstream service failed"
