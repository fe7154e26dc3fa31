"""What a rotation's swap waits for, from its rotation view: a progress bar per propagation
wait (the share of clients that have the awaited policy) and the four gates before the swap
(propagation, orphan risk, approval, maintenance window)."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from certrotate.render import add_plain_row, short_time

OUTCOME_STYLES = {
    "waiting": "cyan",
    "propagated": "green",
    "stalled": "yellow",
    "timed_out": "red",
    "failed": "red",
    "cancelled": "dim",
}
STEP_TITLES = {
    "await_disable_propagation": "clients accept any certificate",
    "await_enable_propagation": "clients verify again",
    "await_after_swap": "clients reached after the swap",
}


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
