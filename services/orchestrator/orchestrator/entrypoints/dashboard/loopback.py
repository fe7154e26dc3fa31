"""The dashboard reads and acts through the REST API itself, in process, with the signed-in
person's token: the same routes, role checks, validation and audit trail as ITSM tools get, so
the pages can never show or allow something the API would not."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request


class ApiError(Exception):
    """The API refused: its problem+json, for the page to show (never with the token)."""

    def __init__(self, status: int, title: str, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code


class Api:
    """An in-process client of this app's /v1 routes, as one signed-in person."""

    def __init__(self, request: Request, token: str) -> None:
        peer = request.client
        # The API sees the browser's address (rate limits, logs), not the loopback's.
        transport = httpx.ASGITransport(
            app=request.app, client=(peer.host, peer.port) if peer else ("127.0.0.1", 0)
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            base_url="http://orchestrator.internal",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60.0,
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def get(self, path: str, **params: Any) -> Any:
        return _json(await self.raw("GET", path, params=_present(params)))

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return _json(await self.raw("POST", path, json=body or {}))

    async def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v not in (None, "")}


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(
        response.status_code,
        str(body.get("title") or "Error"),
        str(body.get("detail") or f"the API answered {response.status_code}"),
        body.get("code"),
    )
