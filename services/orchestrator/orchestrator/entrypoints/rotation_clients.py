"""/v1/rotations/{id}/at-risk and /accepted-clients: a rotation's client lists, which the
client monitor holds, passed on as they arrive (JSON, JSON lines or CSV; a page at a time or
the whole list streamed), never held here."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from orchestrator.adapters.clients import NEXT_CURSOR_HEADER, ListStream
from orchestrator.entrypoints.deps import AppDeps, Viewer
from orchestrator.entrypoints.problems import problem
from orchestrator.entrypoints.rotation_models import ClientListOut, streamed_list
from orchestrator.service_layer import at_risk as at_risk_service

router = APIRouter(prefix="/v1/rotations", tags=["rotations"])

ListFormat = Literal["json", "jsonl", "csv"]
# As the client monitor streams them (format=jsonl, format=csv).
STREAMED_FORMATS = ("application/jsonl", "text/csv")
PageSize = Annotated[
    int | None, Query(ge=1, le=100_000, description="page size; none: the whole list, streamed")
]
Cursor = Annotated[
    str | None, Query(max_length=500, description="X-Next-Cursor of the previous page")
]


def relay(stream: ListStream) -> StreamingResponse:
    """Pass a client list on as it arrives (a million rows are never held here)."""
    headers = {} if stream.next_cursor is None else {NEXT_CURSOR_HEADER: stream.next_cursor}
    return StreamingResponse(
        stream.body,
        media_type=stream.media_type,
        headers=headers,
        background=BackgroundTask(stream.close),
    )


@router.get(
    "/{rotation_id}/at-risk",
    response_model=None,
    responses={
        200: streamed_list(ClientListOut, *STREAMED_FORMATS),
        409: problem("No propagation watch started yet (or not that one)", "no_watch"),
        502: problem("The client monitor did not answer", "client_monitor_unavailable"),
    },
)
async def at_risk(
    rotation_id: str,
    _: Viewer,
    deps: AppDeps,
    status: Literal["at_risk", "straggler", "pending"] = "at_risk",
    format: ListFormat = "json",
    watch_id: str | None = None,
    limit: PageSize = None,
    cursor: Cursor = None,
) -> StreamingResponse:
    """The watch's clients by uniqueId, streamed; in pages with `limit` (next: X-Next-Cursor)."""
    stream = await at_risk_service.at_risk_clients(
        rotation_id, db=deps.db, client_monitor=deps.client_monitor,
        status=status, fmt=format, watch_id=watch_id, cursor=cursor, limit=limit,
    )  # fmt: skip
    return relay(stream)


@router.get(
    "/{rotation_id}/accepted-clients",
    response_model=None,
    responses={200: streamed_list(ClientListOut, *STREAMED_FORMATS)},
)
async def accepted_clients(
    rotation_id: str,
    _: Viewer,
    deps: AppDeps,
    list_id: Annotated[str | None, Query(max_length=64)] = None,
    format: ListFormat = "json",
    limit: PageSize = None,
    cursor: Cursor = None,
) -> StreamingResponse:
    """The at-risk clients an approver accepted ("proceed"), exactly as accepted: the
    JSON-lines export of the whole list has the SHA-256 the history records."""
    return relay(
        await at_risk_service.accepted_clients(
            rotation_id,
            db=deps.db,
            client_monitor=deps.client_monitor,
            list_id=list_id,
            fmt=format,
            cursor=cursor,
            limit=limit,
        )
    )
