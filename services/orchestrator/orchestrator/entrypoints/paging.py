"""Listings page by page: `limit` and an opaque `cursor`; the next page's cursor is in the body
(`next_cursor`) and in a `Link: <...>; rel="next"` header (RFC 8288), absent on the last page."""

from typing import Annotated, Any

from fastapi import Query, Request, Response

from orchestrator.entrypoints.problems import Responses, problem

Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=1000,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Where to resume: the `next_cursor` of the previous page",
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Items on this page at most")]

PAGED: Responses = {
    200: {
        "headers": {
            "Link": {
                "description": 'The next page, `<...?cursor=...>; rel="next"`; absent on the last',
                "schema": {"type": "string"},
            }
        }
    },
    422: problem("A cursor this listing did not give", "invalid_cursor"),
}


def link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """Point at the next page with the same filters (relative to this server)."""
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
