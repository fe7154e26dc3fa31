"""SEPM's page object (Spring style: `number` is 0-based while `pageIndex` is 1-based)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from sepm_twin.api.responses import SepmHTTPError

MAX_PAGE_SIZE = 10_000


def int_param(params: QueryParams, name: str, default: int, *, minimum: int = 0) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SepmHTTPError(400, f"Invalid value for parameter {name}: {raw!r}") from exc
    if value < minimum:
        raise SepmHTTPError(400, f"Parameter {name} must be at least {minimum}")
    return value


def page_params(params: QueryParams, default_size: int) -> tuple[int, int]:
    index = int_param(params, "pageIndex", 1, minimum=1)
    size = int_param(params, "pageSize", default_size, minimum=1)
    if size > MAX_PAGE_SIZE:
        raise SepmHTTPError(400, f"pageSize must be at most {MAX_PAGE_SIZE}")
    return index, size


def sort_spec(prop: str, descending: bool) -> list[dict[str, Any]]:
    return [
        {
            "direction": "DESC" if descending else "ASC",
            "property": prop,
            "ignoreCase": False,
            "nullHandling": "NATIVE",
            "ascending": not descending,
            "descending": descending,
        }
    ]


def page(
    content: list[Any],
    *,
    index: int,
    size: int,
    total: int,
    sort: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    pages = (total + size - 1) // size
    return {
        "content": content,
        "firstPage": index == 1,
        "lastPage": index >= pages,
        "number": index - 1,
        "numberOfElements": len(content),
        "size": size,
        "sort": sort,
        "totalElements": total,
        "totalPages": pages,
    }
