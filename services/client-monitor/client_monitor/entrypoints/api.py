"""HTTP API for operators and the orchestrator's proxy: a watch's counts and its client lists."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import StreamingResponse

from certrotate_shared.http import ProblemError, install_problem_handlers
from certrotate_shared.internal_api import InternalTokenMiddleware
from certrotate_shared.messages.client_monitor import PropagationProgressed
from certrotate_shared.runtime import ServiceRuntime
from client_monitor.adapters import repository
from client_monitor.domain.clients import ClientRow
from client_monitor.domain.propagation import ClientStatus
from client_monitor.service_layer.board import WatchBoard

COLUMNS = (
    "uniqueId",
    "computerName",
    "groupFullPathName",
    "onlineStatus",
    "lastUpdateTime",
    "lastUpdateTimeUtc",
    "daysOffline",
    "profileSerialNo",
)
CHUNK = 1000


class ListFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


def create_api(runtime: ServiceRuntime, board: WatchBoard) -> FastAPI:
    """Routes over the watch board of this replica (live lists) and the database (closed)."""
    app = FastAPI(title="certrotate client-monitor", version="1")
    install_problem_handlers(app)
    settings: Any = runtime.settings
    app.add_middleware(InternalTokenMiddleware, token=settings.internal_token)

    async def record_or_404(watch_id: str) -> repository.WatchRecord:
        record = await repository.get_watch(runtime.engine, watch_id)
        if record is None:
            raise ProblemError(404, "Not found", f"no propagation watch {watch_id!r}")
        return record

    @app.get("/v1/watches/{watch_id}")
    async def get_watch(watch_id: str) -> dict[str, Any]:
        record = await record_or_404(watch_id)
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
        watch_id: str,
        status: ClientStatus = Query(ClientStatus.AT_RISK),
        format: ListFormat = Query(ListFormat.JSON),
        limit: int | None = Query(None, ge=1),
    ) -> StreamingResponse:
        record = await record_or_404(watch_id)
        scanner = board.scanner(watch_id)
        rows: AsyncIterator[dict[str, Any]]
        if scanner is not None:
            if scanner.tally is None:
                raise ProblemError(
                    409,
                    "First scan in progress",
                    f"watch {watch_id} has not finished its first scan of the fleet; "
                    "try again shortly",
                )
            selected, now_ms = scanner.select(status, limit=limit)
            rows = _live_rows(scanner.table.rows(selected), now_ms)
        elif record.status == "open":
            raise ProblemError(
                409,
                "Watch not loaded here",
                f"watch {watch_id} is open but not scanned by this replica yet; try again shortly",
            )
        else:
            rows = _saved_rows(
                repository.stream_pending_clients(
                    runtime.engine, watch_id, status=status.value, limit=limit
                )
            )
        filename = f"{watch_id}-{status.value}"
        if format is ListFormat.CSV:
            return StreamingResponse(
                _csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
            )
        return StreamingResponse(
            _json(rows, watch_id=watch_id, status=status.value, watch_status=record.status),
            media_type="application/json",
        )

    return app


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def _live_rows(rows: Iterable[ClientRow], now_ms: int) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield {
            "uniqueId": row.unique_id,
            "computerName": row.computer_name,
            "groupFullPathName": row.group,
            "onlineStatus": 1 if row.online else 0,
            "lastUpdateTime": row.last_update_ms,
            "lastUpdateTimeUtc": _iso(row.last_update_ms),
            "daysOffline": round(row.days_offline(now_ms), 2),
            "profileSerialNo": row.profile_serial,
        }


async def _saved_rows(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    async for row in rows:
        yield {
            "uniqueId": row["unique_id"],
            "computerName": row["computer_name"],
            "groupFullPathName": row["group_path"],
            "onlineStatus": 1 if row["online"] else 0,
            "lastUpdateTime": row["last_update_ms"],
            "lastUpdateTimeUtc": _iso(row["last_update_ms"]),
            "daysOffline": row["days_offline"],
            "profileSerialNo": row["profile_serial"],
        }


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection");
# computer and group names are chosen by whoever names the machine.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Text a spreadsheet would evaluate, prefixed with a quote so it stays text; numbers as is."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


async def _csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    async for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
        count += 1
        if count % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


async def _json(
    rows: AsyncIterator[dict[str, Any]], *, watch_id: str, status: str, watch_status: str
) -> AsyncIterator[str]:
    head = json.dumps({"watch_id": watch_id, "watch_status": watch_status, "status": status})
    yield head[:-1] + ', "clients": ['
    parts: list[str] = []
    first = True
    async for row in rows:
        parts.append(("" if first else ",") + json.dumps(row))
        first = False
        if len(parts) >= CHUNK:
            yield "".join(parts)
            parts = []
    yield "".join(parts) + "]}"
