"""The demo's live terminal view on a 120x45 console: the newest events are on screen, one
readable line each (issue 14 item 6: they were cut off below the screen, in wrapped JSON)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from certrotate import render

pytestmark = pytest.mark.unit

# A view and the history of a real demo run (step 7 running), as the API returned them.
RECORDED = json.loads((Path(__file__).parent / "demo_rotation.json").read_text())


def screen(events: list[dict[str, Any]], *, width: int = 120, height: int = 45) -> list[str]:
    console = Console(width=width, height=height, file=StringIO(), color_system=None)
    console.print(render.rotation_screen(RECORDED["view"], events, console))
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def event_rows(lines: list[str]) -> dict[int, str]:
    """Rows of the events table by their sequence number (the first cell of the row)."""
    rows: dict[int, str] = {}
    table = False
    for line in lines:
        text = line.strip("│ ")
        if "latest events" in line:
            table = True
            continue
        head = text.split(" ", 1)[0]
        if table and head.isdigit():
            rows[int(head)] = text
    return rows


def test_the_newest_events_fit_on_a_120_by_45_screen_one_line_each() -> None:
    events = RECORDED["events"]
    lines = screen(events)

    assert len(lines) <= 45, "the view is taller than the screen: Live would cut its bottom"
    rows = event_rows(lines)
    newest = events[-1]["seq"]
    assert newest in rows, f"the newest event ({newest}) is not on screen"
    shown = sorted(rows)
    assert shown == list(range(shown[0], newest + 1)), "the shown events are not the newest run"
    assert len(shown) >= 5, "hardly any events fit"
    for seq, row in rows.items():
        [event] = [e for e in events if e["seq"] == seq]
        assert event["type"] in row, f"event {seq} does not show its type on its own line"
    assert not any('{"' in line or '": ' in line for line in lines), "raw JSON on screen"


def test_each_event_reads_as_a_sentence() -> None:
    by_type = {e["type"]: e for e in RECORDED["events"]}
    lines = "\n".join(screen(RECORDED["events"], width=200, height=200))

    assert "96.0% (288/300), pending 0 online / 12 offline, 12 at risk" in lines
    assert "sepm-a2 serves 4163b45d…a449e" in lines or "sepm-a2 serves 4163b45d" in lines
    assert "site-b SUCCEEDED" in lines
    assert by_type["ReplicationRestored"]["seq"] in event_rows(lines.splitlines())


def test_a_short_history_is_shown_whole() -> None:
    events = RECORDED["events"][:3]
    rows = event_rows(screen(events))
    assert sorted(rows) == [1, 2, 3]


def test_the_demo_names_the_dashboard_next_to_the_api(tmp_path: Path) -> None:
    from certrotate.demo import where_to_look

    text = where_to_look("http://127.0.0.1:8080", tmp_path / "secrets.json")
    api, dashboard = text.splitlines()
    assert "http://127.0.0.1:8080" in api and "/docs" in api
    assert "http://127.0.0.1:8080/dashboard/" in dashboard
    assert str(tmp_path / "secrets.json") in dashboard and "admin_token" in dashboard
