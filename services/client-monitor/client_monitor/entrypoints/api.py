"""HTTP API for operators and the orchestrator's proxy: a watch's counts and its client lists."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from certrotate_shared.http import ProblemError, install_problem_handlers
from certrotate_shared.internal_api import InternalTokenMiddleware
from certrotate_shared.messages.client_monitor import PropagationProgressed
from certrotate_shared.runtime import ServiceRuntime
from client_monitor.adapters import repository, stored_clients
from client_monitor.domain.listing import exported
from client_monitor.domain.propagation import ClientStatus
from client_monitor.entrypoints.exports import ListFormat, after_of, list_response
from client_monitor.entrypoints.forwarding import Forwarder
from client_monitor.service_layer.accepting import freeze_list
from client_monitor.service_layer.board import WatchBoard
from client_monitor.service_layer.scanning import WatchScanner


class AcceptIn(BaseModel):
    status: ClientStatus = ClientStatus.AT_RISK


class AcceptedListOut(BaseModel):
    list_id: str
    watch_id: str
    status: str
    count: int
    sha256: str
    created_at: datetime


def create_api(runtime: ServiceRuntime, board: WatchBoard) -> FastAPI:
    """Routes over the watch board of this replica (live lists) and the database (closed)."""
    app = FastAPI(title="certrotate client-monitor", version="1")
    install_problem_handlers(app)
    settings: Any = runtime.settings
    app.add_middleware(InternalTokenMiddleware, token=settings.internal_token)
    app.state.board = board  # which watches this replica scans (operations, tests)

    async def record_or_404(watch_id: str) -> repository.WatchRecord:
        record = await repository.get_watch(runtime.engine, watch_id)
        if record is None:
            raise ProblemError(404, "Not found", f"no propagation watch {watch_id!r}")
        return record

    forwarder = Forwarder(settings, board.owner)

    def scanned_elsewhere(record: repository.WatchRecord) -> bool:
        return record.status == "open" and board.scanner(record.watch_id) is None

    def live_scanner(record: repository.WatchRecord) -> WatchScanner | None:
        """This replica's scanner of an open watch with a first scan done; None when closed."""
        scanner = board.scanner(record.watch_id)
        if scanner is not None and scanner.tally is None:
            raise ProblemError(
                409,
                "First scan in progress",
                f"watch {record.watch_id} has not finished its first scan of the fleet; "
                "try again shortly",
                code="first_scan_in_progress",
            )
        return scanner

    @app.get("/v1/watches/{watch_id}", response_model=None)
    async def get_watch(request: Request, watch_id: str) -> dict[str, Any] | StreamingResponse:
        record = await record_or_404(watch_id)
        if scanned_elsewhere(record):
            with contextlib.suppress(ProblemError):  # else the counts saved last answer
                return await forwarder.forward(request, record)
        body: dict[str, Any] = {
            "watch_id": record.watch_id,
            "saga_id": record.saga_id,
            "site": record.site,
            "status": record.status,
            "deadline": record.deadline,
            "opened_at": record.opened_at,
            "closed_at": record.closed_at,
            "outcome": record.outcome_type,
            "reason": (record.outcome or {}).get("reason"),
            "counts": record.counts,
        }
        scanner = board.scanner(watch_id)
        if scanner is not None:
            now = runtime.clock.now()
            body["scan"] = {
                "scans": scanner.scans,
                "clients_known": len(scanner.table),
                "last_scan_at": scanner.scanned_at,
                "last_error": scanner.last_error,
            }
            if scanner.tally is not None:
                live = scanner.counts(PropagationProgressed, now)
                body["counts"] = live.model_dump(mode="json")
        return body

    @app.get("/v1/watches/{watch_id}/clients", response_model=None)
    async def list_clients(
        request: Request,
        watch_id: str,
        status: ClientStatus = Query(ClientStatus.AT_RISK),
        format: ListFormat = Query(ListFormat.JSON),
        limit: int | None = Query(None, ge=1, description="page size; none: the whole list"),
        cursor: str | None = Query(None, description="X-Next-Cursor of the previous page"),
    ) -> StreamingResponse:
        """The watch's clients in that status, by uniqueId; paged when `limit` is given."""
        after = after_of(cursor)
        record = await record_or_404(watch_id)
        if scanned_elsewhere(record):
            return await forwarder.forward(request, record)
        scanner = live_scanner(record)
        rows: AsyncIterator[dict[str, Any]]
        if scanner is not None:
            selected, now_ms, next_after = scanner.lists.select(status, after=after, limit=limit)
            rows = _exported(scanner.lists.stored_rows(selected, now_ms))
        else:
            stored, next_after = await stored_clients.pending_clients_page(
                runtime.engine, watch_id, status=status.value, after=after, limit=limit
            )
            rows = _exported_async(stored)
        head = {"watch_id": watch_id, "watch_status": record.status, "status": status.value}
        return list_response(
            rows,
            fmt=format,
            next_after=next_after,
            filename=f"{watch_id}-{status.value}",
            head=head,
        )

    @app.post("/v1/watches/{watch_id}/accepted-lists", status_code=201, response_model=None)
    async def accept_list(
        request: Request, watch_id: str, body: AcceptIn | None = None
    ) -> AcceptedListOut | StreamingResponse:
        """Freeze the watch's list (at risk by default) as it is now, for the record."""
        record = await record_or_404(watch_id)
        if scanned_elsewhere(record):
            return await forwarder.forward(request, record)
        status = (body or AcceptIn()).status
        accepted = await freeze_list(runtime, record, live_scanner(record), status)
        return AcceptedListOut(**accepted.__dict__)

    async def accepted_or_404(list_id: str) -> stored_clients.AcceptedList:
        accepted = await stored_clients.get_accepted_list(runtime.engine, list_id)
        if accepted is None:
            raise ProblemError(404, "Not found", f"no accepted list {list_id!r}")
        return accepted

    @app.get("/v1/accepted-lists/{list_id}")
    async def get_accepted_list(list_id: str) -> AcceptedListOut:
        return AcceptedListOut(**(await accepted_or_404(list_id)).__dict__)

    @app.get("/v1/accepted-lists/{list_id}/clients", response_model=None)
    async def accepted_clients(
        list_id: str,
        format: ListFormat = Query(ListFormat.JSON),
        limit: int | None = Query(None, ge=1, description="page size; none: the whole list"),
        cursor: str | None = Query(None, description="X-Next-Cursor of the previous page"),
    ) -> StreamingResponse:
        """The accepted clients exactly as frozen; the JSON-lines export of the whole list has
        the list's sha256."""
        after = after_of(cursor)
        accepted = await accepted_or_404(list_id)
        stored, next_after = await stored_clients.accepted_clients_page(
            runtime.engine, list_id, after=after, limit=limit
        )
        head = {
            "list_id": list_id,
            "watch_id": accepted.watch_id,
            "status": accepted.status,
            "count": accepted.count,
            "sha256": accepted.sha256,
        }
        return list_response(
            _exported_async(stored),
            fmt=format,
            next_after=next_after,
            filename=f"{list_id}-accepted",
            head=head,
        )

    return app


async def _exported(rows: Iterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield exported(row)


async def _exported_async(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    async for row in rows:
        yield exported(row)
