"""Rich output of the certrotate CLI: the pieces every command uses (values shown exactly as
they are, times, fingerprints, states) and the lists (rotations, events, operator tasks). The
rotation view itself, on a panel or on one line, is rotation_view.py.

Pure functions of the API's JSON: no I/O, no clock, so the CLI (`status --watch`) and the
demo show the same picture and tests can render them into a string.

Every text that comes from the API (site and server names, reasons, task titles, SEPM's
computer names) goes into a `Text`, never into a string Rich would read as markup: a name like
`[/bold]` would crash the command, and `[link=...]` would dress up what an operator reads.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from certrotate_shared.history_text import entry_summary

STATE_STYLES = {
    "running": "bold cyan",
    "compensating": "bold yellow",
    "paused": "bold magenta",
    "completed": "bold green",
    "compensated": "bold yellow",
    "failed": "bold red",
}


def plain(value: Any) -> Text:
    """A value shown exactly as it is (no markup), empty for None."""
    return Text("" if value is None else str(value))


def add_plain_row(table: Table, *cells: RenderableType) -> None:
    """Add a row whose string cells are shown as they are, never read as markup."""
    table.add_row(*(plain(cell) if isinstance(cell, str) else cell for cell in cells))


def short_time(value: str | None) -> str:
    """'2026-11-27T07:22:29.528132Z' -> '2026-11-27 07:22:29' (the API's times are UTC)."""
    if not value:
        return "—"
    text = value.replace("T", " ").rstrip("Z")
    return text.split(".")[0].split("+")[0] + (" UTC" if value.endswith(("Z", "+00:00")) else "")


def short_fingerprint(value: str | None) -> str:
    if not value:
        return "—"
    clean = value.replace(":", "").lower()
    return f"{clean[:12]}…{clean[-6:]}" if len(clean) > 20 else clean


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, "bold"))


def tasks_table(tasks: list[dict[str, Any]], *, title: str = "operator tasks") -> RenderableType:
    table = Table(title=title, title_justify="left", box=None)
    table.add_column("task", no_wrap=True)
    table.add_column("status")
    table.add_column("server")
    table.add_column("what to do")
    for task in tasks:
        add_plain_row(
            table,
            str(task.get("task_id")),
            str(task.get("status")),
            str(task.get("server") or task.get("site") or ""),
            str(task.get("title") or ""),
        )
    return table


def event_detail(event: dict[str, Any], *, width: int = 100) -> str:
    text = entry_summary(event)
    return text if len(text) <= width else text[: width - 1] + "…"


def event_line(event: dict[str, Any]) -> str:
    actor = f" by {event['actor']}" if event.get("actor") else ""
    detail = event_detail(event)
    return (
        f"{event.get('seq'):>5}  {short_time(event.get('at'))}  {event.get('kind'):<8} "
        f"{event.get('type')}{actor}" + (f"  {detail}" if detail else "")
    )


def events_table(
    events: list[dict[str, Any]], *, title: str = "events", with_step: bool = True
) -> RenderableType:
    """One line per event, whatever the width: what does not fit ends in an ellipsis."""
    table = Table(title=title, title_justify="left", box=None, expand=True)
    table.add_column("#", justify="right", no_wrap=True, min_width=3)
    table.add_column("at (UTC)", no_wrap=True, min_width=14)
    table.add_column("kind", no_wrap=True, min_width=8)
    table.add_column("type", no_wrap=True, overflow="ellipsis", min_width=18, max_width=40)
    if with_step:
        table.add_column("step", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("detail", no_wrap=True, overflow="ellipsis", ratio=1)
    for event in events:
        kind = str(event.get("kind"))
        style = {"operator": "magenta", "event": "green", "command": "cyan"}.get(kind, "")
        type_ = str(event.get("type"))
        if event.get("actor"):
            type_ += f" by {event['actor']}"
        at = short_time(event.get("at")).removesuffix(" UTC")
        row: list[RenderableType] = [str(event.get("seq")), at[5:], Text(kind, style=style), type_]
        if with_step:
            row.append(str(event.get("step") or ""))
        add_plain_row(table, *row, event_detail(event, width=200))
    return table


def rotations_table(items: list[dict[str, Any]]) -> RenderableType:
    with_change = any(item.get("change_id") for item in items)
    table = Table(box=None)
    table.add_column("rotation", no_wrap=True, min_width=36)  # whole, to copy into a command
    # Fixed widths for what a reader needs whole; the step name gives way on a narrow screen.
    site_width = min(24, max([len(str(item.get("site"))) for item in items] or [4]))
    table.add_column("site", no_wrap=True, min_width=site_width)
    table.add_column("state", no_wrap=True, min_width=12)
    table.add_column("step", overflow="ellipsis", no_wrap=True)
    if with_change:
        table.add_column("change")
    table.add_column("updated")
    for item in items:
        step = item.get("current_step") or {}
        number = step.get("number")
        row: list[RenderableType] = [
            str(item.get("id")),
            str(item.get("site")),
            state_text(str(item.get("state"))),
            f"{number}. {step.get('name')}" if number is not None else str(step.get("name")),
        ]
        if with_change:
            row.append(str(item.get("change_id") or ""))
        row.append(short_time(item.get("updated_at")).removesuffix(" UTC")[:16])
        add_plain_row(table, *row)
    return table
