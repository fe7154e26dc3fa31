"""The demo's closing report: what the rotation did (status, orphaned clients, replication,
the certificate each port served before and after, the simulated time per step), as JSON
for scripts and as Rich tables for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from certrotate.render import add_plain_row


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def build_report(
    view: dict[str, Any],
    before: dict[str, dict[str, str]],
    after: dict[str, dict[str, str]],
    orphans: dict[str, Any],
    replication: dict[str, str],
    *,
    real_seconds: float,
) -> dict[str, Any]:
    return {
        "rotation_id": view["id"],
        "site": view["site"],
        "status": view["state"],
        "reason": view.get("reason"),
        "orphaned_clients": orphans["count"],
        "orphaned_client_ids": orphans.get("client_ids", []),
        "servers": [
            {
                "name": name,
                "ports": {
                    port: {"before": fp, "after": after.get(name, {}).get(port)}
                    for port, fp in sorted(ports.items())
                },
            }
            for name, ports in sorted(before.items())
        ],
        "steps": [
            {
                "name": step["name"],
                "server": step.get("server"),
                "status": step["status"],
                "simulated_seconds": _duration(step["started_at"], step.get("finished_at")),
            }
            for step in view["steps"]
        ],
        "replication": replication,
        "real_seconds": round(real_seconds, 1),
    }


def render_report(report: dict[str, Any]) -> Group:
    summary = Table.grid(padding=(0, 2))
    colour = "green" if report["status"] == "completed" else "red"
    summary.add_row("status", Text(str(report["status"]), style=f"bold {colour}"))
    summary.add_row("orphaned clients", Text(str(report["orphaned_clients"]), style="bold"))
    replication = ", ".join(f"{k}: {v}" for k, v in report["replication"].items())
    add_plain_row(summary, "replication", replication)
    summary.add_row("wall-clock time", f"{report['real_seconds']} s")
    prints = Table(title="certificates served", expand=True)
    for column in ("server", "port", "before", "after"):
        prints.add_column(column)
    for server in report["servers"]:
        for port, fps in server["ports"].items():
            add_plain_row(
                prints,
                server["name"],
                port,
                fps["before"][:16] + "…",
                (fps["after"] or "")[:16] + "…",
            )
    steps = Table(title="time per step (simulated)", expand=True)
    for column in ("step", "server", "status", "duration"):
        steps.add_column(column)
    for step in report["steps"]:
        seconds = step["simulated_seconds"]
        add_plain_row(steps, step["name"], step["server"] or "", step["status"], _human(seconds))
    return Group(Panel(summary, title="report"), prints, steps)


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
