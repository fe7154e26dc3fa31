"""Conditional GETs (RFC 9110 section 13): an ETag on the answer, 304 for a tag the client has.

A dashboard or an ITSM integration polls a rotation every few seconds; most polls find it
unchanged. They send back the tag they hold and get an empty 304 instead of the whole view.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import Header, Response

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, in a comma-separated list (RFC 9110 8.8.3).
_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')

IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=2000,
        description='Entity tags the client holds (e.g. "12.ab34"), or *: 304 if one is current',
    ),
]
# Every poll asks again (no-cache) and no shared cache keeps a viewer's answer (private).
CACHE_CONTROL = "private, no-cache"
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the If-None-Match tag is the current one (no body)"}
}


def none_match(header: str | None, tag: str) -> bool:
    """False when If-None-Match names `tag` (weak comparison, as RFC 9110 13.1.2 asks) or is
    "*"; a header that does not parse names nothing."""
    if header is None:
        return True
    if header.strip() == "*":
        return False
    position, held = 0, set()
    while position < len(header):
        found = _ENTITY_TAG.match(header, position)
        if found is None or found.end() == position:
            return True
        held.add(found.group(1))
        position = found.end()
    return tag not in held


def not_modified(tag: str) -> Response:
    return Response(status_code=304, headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})


def tagged_json(body: bytes, tag: str) -> Response:
    """An answer already serialized (its model was checked when it was built)."""
    return Response(
        body, media_type="application/json", headers={"ETag": tag, "Cache-Control": CACHE_CONTROL}
    )


class AnswerCache:
    """Answers by (resource, entity tag), the most recently used kept: a tag names the exact
    bytes, so a hit never needs to be checked, and a changed resource simply misses."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._answers: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def get(self, resource: str, tag: str) -> bytes | None:
        key = (resource, tag)
        body = self._answers.get(key)
        if body is not None:
            self._answers.move_to_end(key)
        return body

    def put(self, resource: str, tag: str, body: bytes) -> None:
        self._answers[(resource, tag)] = body
        self._answers.move_to_end((resource, tag))
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)
