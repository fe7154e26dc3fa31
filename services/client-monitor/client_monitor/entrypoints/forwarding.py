"""Any replica answers: a read (or a freeze) of an open watch that another replica scans is
forwarded to that replica, whose address its lease records. The client table of an open watch
lives only in its scanner's memory (a million rows are not written on every scan), so the
owner is the one place that can answer exactly."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from certrotate_shared.http import ProblemError
from certrotate_shared.internal_api import internal_client
from client_monitor.adapters.repository import WatchRecord

FORWARDED_HEADER = "X-Certrotate-Forwarded-By"
# What a forwarded answer keeps of the owner's headers.
_RELAYED = ("content-type", "content-disposition", "x-next-cursor", "retry-after")


class Forwarder:
    """HTTP clients to the other replicas, one per address, with the internal token."""

    def __init__(self, settings: Any, me: str) -> None:
        self._settings = settings
        self._me = me
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, url: str) -> httpx.AsyncClient:
        client = self._clients.get(url)
        if client is None:
            settings = self._settings
            client = internal_client(settings, url, settings.internal_token, timeout=600.0)
            self._clients[url] = client
        return client

    async def forward(self, request: Request, record: WatchRecord) -> StreamingResponse:
        """The owner's answer to this request, streamed back as it comes."""
        owner_url = record.owner_url
        if request.headers.get(FORWARDED_HEADER) or not owner_url:
            # Not claimed yet (or the owner has just changed): the next claim settles it.
            raise _not_loaded(record, "no replica has loaded it yet")
        client = self._client(owner_url)
        outgoing = client.build_request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=await request.body(),
            headers={
                FORWARDED_HEADER: self._me,
                "content-type": request.headers.get("content-type", "application/json"),
            },
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise _not_loaded(
                record, f"the replica scanning it cannot be reached ({type(exc).__name__})"
            ) from None
        headers = {k: v for k, v in answer.headers.items() if k.lower() in _RELAYED}
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers=headers,
            background=BackgroundTask(answer.aclose),
        )

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _not_loaded(record: WatchRecord, why: str) -> ProblemError:
    return ProblemError(
        503,
        "Watch not available yet",
        f"watch {record.watch_id} is open and {why}; try again in a few seconds",
        code="watch_owner_unavailable",
    )
