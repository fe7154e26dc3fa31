"""Rich renderings of the orchestrator's rotation view (GET /v1/rotations/{id}).

Pure functions of the API's JSON: no I/O, no clock, so the CLI (`status --watch`) and the
demo show the same picture and tests can render them into a string.

Every text that comes from the API (site and server names, reasons, task titles, SEPM's
computer names) goes into a `Text`, never into a string Rich would read as markup: a name like
`[/bold]` would crash the command, and `[link=...]` would dress up what an operator reads.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
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
OUTCOME_STYLES = {
    "waiting": "cyan",
    "propagated": "green",
    "stalled": "yellow",
    "timed_out": "red",
    "failed": "red",
    "cancelled": "dim",
}
SERVER_STYLES = {
    "pending": "dim",
    "updating": "cyan",
    "updated": "green",
    "failed": "red",
    "rolling_back": "yellow",
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
}
STEP_TITLES = {
    "await_disable_propagation": "clients accept any certificate",
    "await_enable_propagation": "clients verify again",
    "await_after_swap": "clients reached after the swap",
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


def step_label(view: dict[str, Any]) -> str:
    step = view.get("current_step") or {}
    number = step.get("number")
    prefix = f"step {number}: " if number is not None else ""
    return f"{prefix}{step.get('title') or step.get('name') or '?'}"


def rotation_line(view: dict[str, Any]) -> str:
    """One line for logs and scripts: id, state, step, waits and what it waits for."""
    parts = [f"rotation {view.get('id')}", f"site {view.get('site')}", view.get("state", "?")]
    step = view.get("current_step") or {}
    parts.append(f"{step.get('name')}" + (f" ({step['server']})" if step.get("server") else ""))
    waiting = [w for w in view.get("propagation") or [] if w.get("outcome") == "waiting"]
    for wait in waiting:
        if wait.get("percent") is not None:
            parts.append(f"propagation {wait['percent']:.1f}%")
    gates = (view.get("gates") or {}).get("waiting_for") or []
    if gates:
        parts.append("gates wait for " + ", ".join(gates))
    pending = view.get("pending_decision")
    if pending:
        parts.append(f"awaits a decision ({'/'.join(pending.get('options') or [])})")
    if view.get("reason"):
        parts.append(f"reason: {view['reason']}")
    return " · ".join(str(p) for p in parts)


def header(view: dict[str, Any]) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    add_plain_row(grid, "rotation", str(view.get("id")))
    add_plain_row(grid, "site", str(view.get("site")))
    add_plain_row(grid, "state", state_text(str(view.get("state"))))
    step = view.get("current_step") or {}
    detail = step_label(view)
    if step.get("server"):
        detail += f" — server {step['server']}"
    if step.get("attempt") and step["attempt"] > 1:
        detail += f" (attempt {step['attempt']})"
    add_plain_row(grid, "step", detail)
    certificate = view.get("certificate") or {}
    if certificate.get("fingerprint_sha256"):
        add_plain_row(
            grid,
            "certificate",
            f"{short_fingerprint(certificate['fingerprint_sha256'])}"
            + (
                f", valid until {short_time(certificate.get('not_after'))}"
                if certificate.get("not_after")
                else ""
            ),
        )
    if view.get("change_id"):
        add_plain_row(grid, "change", str(view["change_id"]))
    hold = view.get("hold") or {}
    if hold.get("paused"):
        add_plain_row(grid, "hold", Text(f"paused: {hold.get('reason') or ''}", style="magenta"))
    pending = view.get("pending_decision")
    if pending:
        add_plain_row(
            grid,
            "decision",
            Text(
                f"{pending.get('reason')} — choose {' | '.join(pending.get('options') or [])}"
                f" (certrotate decide {view.get('id')} --decision ...)",
                style="bold magenta",
            ),
        )
    if view.get("cancel_requested"):
        add_plain_row(grid, "cancel", Text(str(view["cancel_requested"]), style="yellow"))
    if view.get("reason"):
        add_plain_row(grid, "reason", Text(str(view["reason"]), style="yellow"))
    return grid


def propagation_bars(view: dict[str, Any]) -> RenderableType | None:
    """One progress bar per propagation wait: % of clients that have the awaited policy."""
    waits = view.get("propagation") or []
    if not waits:
        return None
    table = Table(title="policy propagation", title_justify="left", expand=False, box=None)
    table.add_column("wait")
    table.add_column("progress", min_width=30)
    table.add_column("%", justify="right")
    table.add_column("clients", justify="right")
    table.add_column("pending online/offline", justify="right")
    table.add_column("outcome")
    for wait in waits:
        percent = wait.get("percent")
        style = OUTCOME_STYLES.get(str(wait.get("outcome")), "")
        done = wait.get("outcome") == "propagated"
        bar = ProgressBar(
            total=100.0,
            completed=float(percent if percent is not None else 0.0),
            width=30,
            complete_style="green" if done else "cyan",
            finished_style="green",
        )
        reached, total = wait.get("reached"), wait.get("total")
        clients = f"{reached}/{total}" if total is not None else "—"
        pending = (
            f"{wait.get('pending_online')}/{wait.get('pending_offline')}"
            if wait.get("pending_online") is not None
            else "—"
        )
        name = wait.get("step", "?")
        add_plain_row(
            table,
            Text.assemble(str(name), "\n", (STEP_TITLES.get(name, ""), "dim")),
            bar,
            f"{percent:.1f}" if percent is not None else "—",
            clients,
            pending,
            Text(str(wait.get("outcome")), style=style),
        )
    return table


def _passed(flag: Any) -> Text:
    if flag is None:
        return Text("—", style="dim")
    return Text("passed", style="green") if flag else Text("waiting", style="yellow")


def gates_table(view: dict[str, Any]) -> RenderableType:
    """The four gates before the swap: propagation, orphan risk, approval, window."""
    gates = view.get("gates") or {}
    table = Table(title="gates", title_justify="left", box=None)
    table.add_column("gate")
    table.add_column("status")
    table.add_column("detail")
    propagation = gates.get("propagation") or {}
    percent = propagation.get("percent")
    add_plain_row(
        table,
        "propagation",
        _passed(propagation.get("passed")),
        (f"{percent:.1f}% " if percent is not None else "")
        + f"of clients seen within {propagation.get('stale_horizon_days')} days "
        f"(threshold {float(propagation.get('threshold') or 0) * 100:.0f}%)",
    )
    risk = gates.get("orphan_risk") or {}
    at_risk = risk.get("at_risk")
    accepted = risk.get("accepted")
    detail = f"{'—' if at_risk is None else at_risk} at risk, budget {risk.get('budget')}"
    if accepted:
        detail += f"; {accepted.get('accepted_count')} accepted by {accepted.get('by')}"
    add_plain_row(
        table, "orphan risk", _passed(risk.get("passed") if at_risk is not None else None), detail
    )
    approval = gates.get("approval") or {}
    if approval.get("required"):
        detail = (
            f"approved by {approval.get('approved_by')}"
            if approval.get("approved_by")
            else "needs an approver"
        )
        add_plain_row(table, "approval", _passed(approval.get("passed")), detail)
    else:
        add_plain_row(table, "approval", Text("not required", style="dim"), "")
    window = gates.get("maintenance_window") or {}
    if window.get("configured"):
        detail = f"{window.get('cron')} for {window.get('duration_minutes')} min ({window.get('timezone')})"
        if window.get("next_opening"):
            detail += f"; opens {short_time(window.get('next_opening'))}"
        add_plain_row(table, "window", _passed(window.get("passed")), detail)
    else:
        add_plain_row(table, "window", Text("none", style="dim"), "")
    return table


def servers_table(view: dict[str, Any]) -> RenderableType | None:
    servers = view.get("servers") or []
    if not servers:
        return None
    table = Table(title="servers", title_justify="left", box=None)
    table.add_column("server")
    table.add_column("status")
    table.add_column("before")
    table.add_column("after")
    table.add_column("ports verified")
    for server in servers:
        ports = server.get("ports_verified") or {}
        add_plain_row(
            table,
            str(server.get("name")),
            Text(str(server.get("status")), style=SERVER_STYLES.get(str(server.get("status")), "")),
            short_fingerprint(server.get("fingerprint_before")),
            short_fingerprint(server.get("fingerprint_after")),
            ", ".join(sorted(ports, key=str)) or "—",
        )
        if server.get("error"):
            add_plain_row(table, "", Text(str(server["error"]), style="red"), "", "", "")
    return table


def replication_text(view: dict[str, Any]) -> RenderableType | None:
    replication = view.get("replication") or {}
    partners = replication.get("partners") or []
    if not partners:
        return None
    broken = set(replication.get("broken") or [])
    restored = {p.get("name"): p.get("status_code") for p in replication.get("restored") or []}
    line = Text("replication: ", style="bold")
    for index, partner in enumerate(partners):
        name = partner.get("name")
        if index:
            line.append(", ")
        if name in restored:
            line.append(f"{name} restored ({restored[name]})", style="green")
        elif name in broken:
            line.append(f"{name} paused for the rotation", style="yellow")
        else:
            line.append(f"{name} {partner.get('status_code') or ''}".strip())
    return line


def steps_table(view: dict[str, Any]) -> RenderableType | None:
    """Each step with its timing, so a slow one is easy to spot."""
    steps = view.get("steps") or []
    if not steps:
        return None
    table = Table(title="steps", title_justify="left", box=None)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("status")
    table.add_column("started")
    table.add_column("finished")
    for record in steps:
        status = str(record.get("status"))
        style = {"done": "green", "failed": "red", "waiting": "yellow", "running": "cyan"}
        add_plain_row(
            table,
            "" if record.get("number") is None else str(record["number"]),
            str(record.get("title") or record.get("name"))
            + (f" ({record['server']})" if record.get("server") else ""),
            Text(status, style=style.get(status, "")),
            short_time(record.get("started_at")),
            short_time(record.get("finished_at")),
        )
    return table


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


def rotation_panel(
    view: dict[str, Any], events: list[dict[str, Any]] | None = None
) -> RenderableType:
    """The whole rotation on one panel: header, propagation bars, gates, servers, events."""
    parts: list[RenderableType] = [header(view)]
    for part in (
        propagation_bars(view),
        gates_table(view),
        servers_table(view),
        replication_text(view),
    ):
        if part is not None:
            parts.append(Text(""))
            parts.append(part)
    tasks = [t for t in view.get("open_tasks") or [] if t.get("status") != "done"]
    if tasks:
        parts += [
            Text(""),
            tasks_table(tasks, title="operator tasks (certrotate tasks confirm ID)"),
        ]
    if events:
        parts += [Text(""), events_table(events, title="latest events", with_step=False)]
    state = str(view.get("state"))
    return Panel(
        Group(*parts),
        title=plain(f"certrotate · {view.get('site')}"),
        border_style=STATE_STYLES.get(state, "white").replace("bold ", ""),
    )


def rotation_screen(
    view: dict[str, Any], events: list[dict[str, Any]], console: Console
) -> RenderableType:
    """The rotation panel with as many of the newest events as the console has lines left for:
    a live display taller than the terminal loses its bottom, where the newest events are."""
    used = len(console.render_lines(rotation_panel(view), console.options, pad=False))
    # The events table adds a blank line, its title and its header; keep one line for the cursor.
    room = console.height - used - 4
    return rotation_panel(view, events=events[-room:] if room > 0 else None)


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
