"""A request body limit enforced on the ASGI receive stream, so a chunked body (no
Content-Length) is cut off at the limit instead of being read whole and parsed."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certrotate_shared.problem import problem_response

# Large enough for a keystore travelling base64 inside JSON; services may set their own.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


class BodyTooLargeError(HTTPException):
    """Raised from receive(): FastAPI re-raises HTTP exceptions met while reading a body, and
    the problem handlers answer it as 413 problem+json."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited, send)


async def _refuse(send: Send, limit: int) -> None:
    response: Any = problem_response(
        413, "Payload too large", f"the request body is larger than the limit of {limit} bytes"
    )
    await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def limit_request_bodies(app: FastAPI, max_bytes: int) -> None:
    """Refuse (413) any request body above `max_bytes`, declared or streamed."""
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
