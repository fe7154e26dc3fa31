"""The demo's live terminal view on a 120x45 console: the newest events are on screen, one
readable line each (issue 14 item 6: they were cut off below the screen, in wrapped JSON)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from certrotate import rotation_view

pytestmark = pytest.mark.unit

# A view and the history of a real demo run (step 7 running), as the API returned them.
RECORDED = json.loads((Path(__file__).parent / "demo_rotation.json").read_text())


def screen(events: list[dict[str, Any]], *, width: int = 120, height: int = 45) -> list[str]:
    console = Console(width=width, height=height, file=StringIO(), color_system=None)
    console.print(rotation_view.rotation_screen(RECORDED["view"], events, console))
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


async def test_the_demo_follows_the_history_without_repeating_an_event(tmp_path: Path) -> None:
    """The API answers `after=N` with what came after N (next_after only when it paged): the
    demo used to ask from 0 again on every poll and showed each event many times."""
    from certrotate.demo import Demo

    history = RECORDED["events"]
    polls = {"n": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            after = int(request.url.params.get("after", 0))
            return httpx.Response(200, json={"items": [e for e in history if e["seq"] > after][:10],
                                             "next_after": None})  # fmt: skip
        polls["n"] += 1
        state = "completed" if polls["n"] > 6 else "running"
        return httpx.Response(200, json={**RECORDED["view"], "state": state})

    console = Console(width=120, height=45, file=StringIO(), color_system=None)
    demo = Demo(console, speed=3600, port=0, data_dir=tmp_path)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), base_url="http://api"
    ) as api:
        await demo.follow(api, RECORDED["view"]["id"])
    seqs = [e["seq"] for e in demo.events]
    assert seqs == sorted(set(seqs)), "an event was shown twice or out of order"
    assert seqs[-1] == history[-1]["seq"]
