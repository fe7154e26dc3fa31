"""Client lists on the wire: streamed JSON (one document), JSON lines or CSV, in pages when a
`limit` is given. The next page's cursor is known before the first byte goes out, so it is in
the `X-Next-Cursor` header for every format and in the JSON document's `next_cursor`."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

import orjson
from fastapi.responses import StreamingResponse

from certrotate_shared.http import ProblemError
from certrotate_shared.spreadsheet import safe_cell
from client_monitor.domain.listing import (
    COLUMNS,
    InvalidCursorError,
    decode_cursor,
    encode_cursor,
    jsonl_line,
)

CHUNK = 1000
NEXT_CURSOR_HEADER = "X-Next-Cursor"


class ListFormat(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


def after_of(cursor: str | None) -> str | None:
    """The uniqueId a request's cursor continues after; 400 for a cursor we never gave out."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except InvalidCursorError:
        raise ProblemError(
            400, "Bad request", "the cursor is not one this list handed out", code="invalid_cursor"
        ) from None


def list_response(
    rows: AsyncIterator[dict[str, Any]],
    *,
    fmt: ListFormat,
    next_after: str | None,
    filename: str,
    head: dict[str, Any],
) -> StreamingResponse:
    """Stream `rows` (exported client rows, in order) in the asked format."""
    next_cursor = None if next_after is None else encode_cursor(next_after)
    headers = {} if next_cursor is None else {NEXT_CURSOR_HEADER: next_cursor}
    if fmt is ListFormat.CSV:
        headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    if fmt is ListFormat.JSONL:
        return StreamingResponse(
            _jsonl(rows), media_type="application/jsonl; charset=utf-8", headers=headers
        )
    return StreamingResponse(
        _json(rows, head=head, next_cursor=next_cursor),
        media_type="application/json",
        headers=headers,
    )


async def _csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    async for row in rows:
        writer.writerow({key: safe_cell(value) for key, value in row.items()})
        count += 1
        if count % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


async def _jsonl(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    parts: list[bytes] = []
    async for row in rows:
        parts.append(jsonl_line(row))
        if len(parts) >= CHUNK:
            yield b"".join(parts)
            parts = []
    yield b"".join(parts)


async def _json(
    rows: AsyncIterator[dict[str, Any]], *, head: dict[str, Any], next_cursor: str | None
) -> AsyncIterator[bytes]:
    yield orjson.dumps(head)[:-1] + b',"clients":['
    parts: list[bytes] = []
    separator = b""
    async for row in rows:
        parts.append(orjson.dumps(row))
        if len(parts) >= CHUNK:
            yield separator + b",".join(parts)
            parts, separator = [], b","
    last = separator + b",".join(parts) if parts else b""
    yield last + b"]," + orjson.dumps({"next_cursor": next_cursor})[1:]
