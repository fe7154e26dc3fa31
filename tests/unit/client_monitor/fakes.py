"""Fakes for unit tests: SEPM computer records and a SepmApi over an in-memory fleet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from certrotate_shared.messages.common import GroupTarget
from certrotate_shared.sepm.api import PageReader, PageT, SepmDomain
from client_monitor.adapters.computer_pages import read_computers_page
from client_monitor.domain.computers import ComputerPage

GROUP_A = "A3AF0000000000000000000000000001"
GROUP_B = "B7C10000000000000000000000000002"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
DAY_MS = 86_400_000


def serial(group_id: str, at_ms: int) -> str:
    when = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return f"{group_id[:4]}-{when:%m/%d/%Y %H:%M:%S} {at_ms % 1000:03d}"


OLD_A, TARGET_A, LATER_A = (serial(GROUP_A, T0_MS + d) for d in (-DAY_MS, 0, DAY_MS))
OLD_B, TARGET_B = serial(GROUP_B, T0_MS - DAY_MS), serial(GROUP_B, T0_MS)

TARGETS = [
    GroupTarget(group_id=GROUP_A, full_path_name="My Company\\Default", target_serial=TARGET_A),
    GroupTarget(group_id=GROUP_B, full_path_name="My Company\\Laptops", target_serial=TARGET_B),
]


def computer(
    n: int,
    *,
    group: str = GROUP_A,
    serial_no: str = OLD_A,
    online: bool = True,
    last_update_ms: int = T0_MS,
) -> dict[str, Any]:
    return {
        "uniqueId": f"{n:032X}",
        "computerName": f"WS{n:05d}",
        "onlineStatus": 1 if online else 0,
        "lastUpdateTime": last_update_ms,
        "profileSerialNo": serial_no,
        "group": {"id": group, "name": "x", "fullPathName": "ignored"},
    }


def page(records: list[dict[str, Any]]) -> ComputerPage:
    """These records as one page of GET /computers reads them."""
    return read_computers_page(orjson.dumps({"content": records}), "GET /computers")[0]


@dataclass
class FakeSepm:
    """Pages over a dict of records; remembers the lastUpdate of every scan."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    scans: list[int] = field(default_factory=list)
    fail_after_pages: int | None = None
    # uniqueId -> domain id; the rest are in the Default domain, the one answered without one.
    domain_of: dict[str, str] = field(default_factory=dict)

    def put(self, *records: dict[str, Any]) -> None:
        for r in records:
            self.records[r["uniqueId"]] = r

    async def domains(self) -> list[SepmDomain]:
        ids = dict.fromkeys(["D-DEFAULT", *self.domain_of.values()])
        return [SepmDomain(id=d, name=d) for d in ids]

    async def iter_computer_page_bodies(
        self,
        read: PageReader[PageT],
        *,
        last_update_ms: int = 0,
        page_size: int = 1000,
        domain_id: str | None = None,
    ) -> AsyncIterator[PageT]:
        """Pages as SEPM sends them (JSON bytes of a Page object), read by the caller's reader."""
        pages = self.iter_computer_pages(
            last_update_ms=last_update_ms, page_size=page_size, domain_id=domain_id
        )
        async for content, last in pages:
            yield read(orjson.dumps({"content": content, "lastPage": last}), "GET /computers")[0]

    async def iter_computer_pages(
        self, *, last_update_ms: int = 0, page_size: int = 1000, domain_id: str | None = None
    ) -> AsyncIterator[tuple[list[dict[str, Any]], bool]]:
        from certrotate_shared.sepm.api import SepmError

        if (domain_id or "D-DEFAULT") == "D-DEFAULT":
            self.scans.append(last_update_ms)
        # A record with a malformed lastUpdateTime is served as SEPM would: unfiltered.
        chosen = [
            r
            for r in self.records.values()
            if self.domain_of.get(r["uniqueId"], "D-DEFAULT") == (domain_id or "D-DEFAULT")
            and (not isinstance(r["lastUpdateTime"], int) or r["lastUpdateTime"] >= last_update_ms)
        ]
        for page, start in enumerate(range(0, max(len(chosen), 1), page_size)):
            if self.fail_after_pages is not None and page >= self.fail_after_pages:
                self.fail_after_pages = None
                raise SepmError("connection reset", retryable=True)
            yield chosen[start : start + page_size], start + page_size >= len(chosen)

    async def close(self) -> None:
        pass
