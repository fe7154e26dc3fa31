"""What the pages draw, from the API's JSON: pure functions, tested without a browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.domain.steps import COMPENSATION, FORWARD, Step

TERMINAL = ("completed", "compensated", "failed")
# Who may choose each answer to a paused rotation (the API checks it again).
DECISION_ROLE = {"proceed": "approver"}
DECISION_LABELS = {
    "extend": "Extend the wait",
    "proceed": "Proceed, accepting the clients at risk",
    "abort": "Abort and undo",
    "retry": "Retry the step",
    "compensate": "Undo the rotation",
    "mark_done": "Mark the step done",
}


def readable(value: Any) -> str:
    """A value of a history entry as text: lists joined, waves separated, no Python repr."""
    if isinstance(value, list | tuple):
        nested = any(isinstance(v, list | tuple) for v in value)
        return (" / " if nested else ", ").join(readable(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items())
    return str(value)


def when(value: str | None) -> str:
    """'2026-11-30T10:35:01.23Z' -> '2026-11-30 10:35 UTC' (the API's clock, maybe simulated)."""
    if not value:
        return "—"
    return value.replace("T", " ")[:16] + " UTC"


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    seconds = (_at(end) - _at(start)).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class TimelineRow:
    name: str
    number: int | None
    title: str
    status: str  # done, running, waiting, failed, skipped, pending
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    detail: str | None = None
    servers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def took(self) -> str:
        return duration(self.started_at, self.finished_at)


def timeline(view: dict[str, Any]) -> list[TimelineRow]:
    """The forward table's steps in order, each with its records' status and times."""
    return _rows(FORWARD, "forward", view)


def compensation(view: dict[str, Any]) -> list[TimelineRow]:
    """The undo steps that ran (or run), if any."""
    if not any(r.get("phase") == "compensation" for r in view.get("steps") or []):
        return []
    return [r for r in _rows(COMPENSATION, "compensation", view) if r.status != "pending"]


def _rows(table: tuple[Step, ...], phase: str, view: dict[str, Any]) -> list[TimelineRow]:
    records = [r for r in view.get("steps") or [] if r.get("phase") == phase]
    terminal = view.get("state") in TERMINAL
    rows = []
    for step in table:
        mine = [r for r in records if r.get("name") == step.name]
        if not mine:
            rows.append(
                TimelineRow(
                    step.name, step.number, step.title, "not run" if terminal else "pending"
                )
            )
            continue
        last = mine[-1]
        status = str(last.get("status"))
        if status == "running" and _waits(view, step.name):
            status = "waiting"
        rows.append(
            TimelineRow(
                step.name, step.number, step.title, status,
                started_at=mine[0].get("started_at"),
                finished_at=last.get("finished_at") if status in ("done", "failed", "skipped") else None,
                attempts=max(int(r.get("attempts") or 0) for r in mine),
                detail=last.get("detail"),
                servers=[r for r in mine if r.get("server")] if step.per_server else [],
            )
        )  # fmt: skip
    return rows


def _waits(view: dict[str, Any], step: str) -> bool:
    """A step that runs but only waits: for clients, a gate, a person or a timer."""
    current = (view.get("current_step") or {}).get("name")
    if current != step:
        return False
    if view.get("state") == "paused":
        return True
    return bool((view.get("gates") or {}).get("waiting_for")) or any(
        w.get("step") == step and w.get("outcome") == "waiting"
        for w in view.get("propagation") or []
    )


@dataclass
class Chart:
    """A wait's reached % over time, as SVG coordinates (width x height, origin top left)."""

    width: int
    height: int
    line: str  # polyline points
    forecast: tuple[float, float, float, float] | None  # x1, y1, x2, y2
    start_label: str
    end_label: str
    summary: str


def propagation_chart(
    wait: dict[str, Any], points: list[tuple[str, float]], *, width: int = 560, height: int = 140
) -> Chart:
    """Reached % from the start of the wait (nobody has a serial that did not exist yet) through
    every reading in the history and the latest one, with the forecast to 100% dashed."""
    start = wait.get("started_at") or (points[0][0] if points else None)
    series = [(start, 0.0)] if start else []
    series += sorted(points)
    if wait.get("observed_at") and wait.get("percent") is not None:
        series.append((wait["observed_at"], float(wait["percent"])))
    series = sorted({t: p for t, p in series if t}.items())
    forecast_at = wait.get("forecast_complete_at") if wait.get("outcome") == "waiting" else None
    times = [_at(t) for t, _ in series] + ([_at(forecast_at)] if forecast_at else [])
    if wait.get("finished_at"):
        times.append(_at(wait["finished_at"]))
    first, last = (min(times), max(times)) if times else (None, None)
    span = (last - first).total_seconds() if first and last else 0.0

    def xy(t: str, percent: float) -> tuple[float, float]:
        offset = (_at(t) - first).total_seconds() if first else 0.0
        x = width * (offset / span) if span > 0 else 0.0
        return round(x, 1), round(height * (1 - min(max(percent, 0.0), 100.0) / 100), 1)

    line = " ".join(f"{x},{y}" for x, y in (xy(t, p) for t, p in series))
    forecast = None
    if forecast_at and series:
        x1, y1 = xy(*series[-1])
        x2, y2 = xy(forecast_at, 100.0)
        forecast = (x1, y1, x2, y2)
    read = len(series) > 1 or bool(points)  # more than the origin the chart adds itself
    summary = f"{series[-1][1]:.1f}% reached at {when(series[-1][0])}" if read else "no reading yet"
    if forecast_at:
        summary += f"; forecast: all reached by {when(forecast_at)}"
    return Chart(
        width, height, line, forecast,
        when(first.isoformat()) if first else "", when(last.isoformat()) if last else "", summary,
    )  # fmt: skip


def port_rows(server: dict[str, Any], ports: list[str] | None = None) -> list[dict[str, Any]]:
    """Fingerprint before and after on every TLS port the swap verified (or the inventory's)."""
    verified = server.get("ports_verified") or {}
    names = sorted(set(verified) | set(ports or []), key=lambda p: (len(p), p))
    after_all = server.get("fingerprint_after")
    rows = []
    for port in names:
        after = verified.get(port)
        rows.append(
            {
                "port": port,
                "before": server.get("fingerprint_before"),
                "after": after,
                "matches": bool(after and after_all and after.lower() == after_all.lower()),
            }
        )
    return rows


def decision_choices(pending: dict[str, Any] | None, may: Any) -> list[dict[str, str]]:
    """The answers this person's role may give to the waiting decision."""
    if not pending:
        return []
    return [
        {"value": option, "label": DECISION_LABELS.get(option, option)}
        for option in pending.get("options") or []
        if may(DECISION_ROLE.get(option, "operator"))
    ]


def awaits_approval(view: dict[str, Any]) -> bool:
    approval = (view.get("gates") or {}).get("approval") or {}
    return (
        view.get("state") not in TERMINAL
        and bool(approval.get("required"))
        and not approval.get("passed")
    )
