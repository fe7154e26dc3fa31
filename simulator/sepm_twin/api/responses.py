"""JSON responses the way SEPM shapes them, serialised with orjson for large pages."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def json_bytes_response(body: bytes) -> Response:
    """A body already written as JSON (the large /computers pages)."""
    return Response(body, media_type="application/json")


def sepm_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """SEPM's error body: errorCode (the HTTP status as text), appErrorCode, errorMessage."""
    return json_response(
        {"errorCode": str(status), "appErrorCode": None, "errorMessage": message},
        status,
        headers,
    )


def host_error(status: int, code: str, message: str) -> Response:
    """The host agent's error body; never carries a secret."""
    return json_response({"errorCode": code, "errorMessage": message}, status)


class SepmHTTPError(Exception):
    """Raised from SEPM routes and turned into SEPM's error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
