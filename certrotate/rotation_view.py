"""The orchestrator's rotation view (GET /v1/rotations/{id}) in Rich: the whole rotation on one
panel (header, propagation bars, gates, servers, replication, open tasks, latest events), and
on one line for logs and scripts. Pure functions of the API's JSON, like render.py, whose
rules on untrusted text hold here too.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from certrotate.render import (
    STATE_STYLES,
    add_plain_row,
    events_table,
    plain,
    short_fingerprint,
    short_time,
    state_text,
    tasks_table,
)
from certrotate.rotation_gates import gates_table, propagation_bars

SERVER_STYLES = {
    "pending": "dim",
    "updating": "cyan",
    "updated": "green",
    "failed": "red",
    "rolling_back": "yellow",
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
}


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
