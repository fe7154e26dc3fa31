"""SEPM's GET /computers pages read straight from their bytes into the columns a watch keeps.

A page of 1,000 computers is ~650 KB of JSON, and SEPM's Computer definition has 147 fields of
which a watch reads six. Decoded into dicts, each computer became ~20 Python objects, most never
looked at (half the CPU of a 1M-client scan). msgspec builds only the fields declared here, from
the bytes, and skips the others unread; their types are checked as they are decoded. Names and
types are those of SEPM's REST definition (Computer, GroupSummary, DomainSummary, the page).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, TypeVar

import msgspec

from certrotate_shared.sepm.answers import malformed
from certrotate_shared.sepm.api import SepmApi, SepmDomain
from client_monitor.domain.computers import ComputerPage

T = TypeVar("T")

# uniqueId is a string in SEPM's definition (32 hex digits on real servers). The bound keeps
# one odd answer from widening the id column of a million clients.
UniqueId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
OnlineStatus = Annotated[int, msgspec.Meta(ge=0, le=1)]  # 1 online, 0 offline
EpochMs = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # int64 in the definition


class _DomainSummary(msgspec.Struct, gc=False):
    id: str | None = None


class _GroupSummary(msgspec.Struct, gc=False):
    id: str | None = None
    domain: _DomainSummary | None = None


class _Computer(msgspec.Struct, rename="camel", gc=False):
    unique_id: UniqueId
    computer_name: str | None = None
    online_status: OnlineStatus | None = None
    last_update_time: EpochMs | None = None
    profile_serial_no: str | None = None
    group: _GroupSummary | None = None


class _Page(msgspec.Struct, rename="camel", gc=False):
    content: list[_Computer] | None = None
    last_page: bool = True  # a server that never says lastPage: one page (as the connector)


_decode = msgspec.json.Decoder(_Page).decode
_ITEM = re.compile(r"\$\.content\[(\d+)\]")


def read_computers_page(
    body: bytes, where: str, *, domain_id: str | None = None
) -> tuple[ComputerPage, bool]:
    """One page's computers and its lastPage; a malformed answer is a final, typed error.

    Given the domain asked for, a computer whose group names another domain is refused: a
    server that ignored the parameter would show one domain's clients for every domain.
    """
    try:
        page = _decode(body)
    except msgspec.ValidationError as exc:
        raise malformed(where, _with_culprit(body, str(exc))) from None
    except msgspec.DecodeError:
        # A login page or a proxy's error page served with 200: not SEPM's API answering.
        raise malformed(where, "not JSON") from None
    computers = page.content or []
    ids = [c.unique_id for c in computers]
    if any(map(str.isspace, ids)):
        blank = next(i for i, u in enumerate(ids) if u.isspace())
        raise malformed(where, f"computer #{blank + 1} of the page has a blank uniqueId")
    groups = [c.group for c in computers]
    if domain_id:
        _check_domain(ids, groups, domain_id, where)
    return (
        ComputerPage(
            unique_ids=ids,
            computer_names=[c.computer_name or "" for c in computers],
            group_ids=[g.id if g is not None else None for g in groups],
            serials=[c.profile_serial_no or "" for c in computers],
            online=[c.online_status == 1 for c in computers],
            last_update_ms=[c.last_update_time or 0 for c in computers],
        ),
        page.last_page,
    )


async def iter_fleet_pages(
    sepm: SepmApi, *, domains: Sequence[SepmDomain], last_update_ms: int, page_size: int
) -> AsyncIterator[ComputerPage]:
    """The computers of every domain, page by page, with the same lastUpdate filter."""
    for domain in domains:
        read = functools.partial(read_computers_page, domain_id=domain.id)
        async for page in sepm.iter_computer_page_bodies(
            read, last_update_ms=last_update_ms, page_size=page_size, domain_id=domain.id
        ):
            yield page


def _check_domain(
    ids: list[str], groups: list[_GroupSummary | None], domain_id: str, where: str
) -> None:
    wanted = domain_id.upper()
    named = {g.domain.id for g in groups if g is not None and g.domain is not None}
    if all(not d or d.upper() == wanted for d in named):
        return
    for unique_id, group in zip(ids, groups, strict=True):
        got = group.domain.id if group is not None and group.domain is not None else None
        if got and got.upper() != wanted:
            raise malformed(
                where,
                f"asked for domain {domain_id} and got computer {unique_id} of domain {got}",
            )


def _with_culprit(body: bytes, problem: str) -> str:
    """msgspec's message (types and the path, never a value), with the uniqueId of the computer
    at fault when it has a readable one. Only on the error path: the page is decoded again."""
    found = _ITEM.search(problem)
    if found is None:
        return problem
    try:
        item: Any = json.loads(body)["content"][int(found[1])]
    except (ValueError, TypeError, KeyError, IndexError):
        return problem
    unique_id = item.get("uniqueId") if isinstance(item, dict) else None
    if isinstance(unique_id, str) and 0 < len(unique_id) <= 128 and unique_id.isprintable():
        return f"computer {unique_id}: {problem}"
    return f"computer #{int(found[1]) + 1} of the page: {problem}"


async def read_ahead(pages: AsyncIterator[T], depth: int = 2) -> AsyncIterator[T]:
    """Fetch the next pages while the caller digests this one: SEPM renders, we count."""
    queue: asyncio.Queue[tuple[T | None, BaseException | None, bool]] = asyncio.Queue(depth)

    async def fetch() -> None:
        try:
            async for page in pages:
                await queue.put((page, None, False))
            await queue.put((None, None, True))
        except Exception as exc:
            await queue.put((None, exc, True))

    task = asyncio.create_task(fetch())
    try:
        while True:
            page, error, done = await queue.get()
            if error is not None:
                raise error
            if done:
                return
            yield page  # type: ignore[misc]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
