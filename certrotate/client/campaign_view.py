"""The campaign as the CLI shows it, once or live (`certrotate campaign status --watch`)."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from certrotate.api_client import ApiClient
from certrotate.client.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_NEEDS_OPERATOR,
    EXIT_OK,
    EXIT_ROTATION_FAILED,
)
from certrotate.client.output import stderr_console
from certrotate.client.watch import patiently
from certrotate.render import add_plain_row, plain, short_time

# Campaign states in which it waits for someone (exit 5), and those it ends in.
WAITING = {"paused", "awaiting_approval", "halted"}
ENDED = {"completed": EXIT_OK, "cancelled": EXIT_ROTATION_FAILED, "aborted": EXIT_ROTATION_FAILED}


def headline(view: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(view["sites_by_state"].items()))
    decision = view.get("decision_waiting")
    waiting = f" · waiting: {decision['reason']}" if decision else ""
    return (
        f"{view['id']} {view['name']}: {view['state']}, wave {view['current_wave']}/"
        f"{view['waves']} ({counts}){waiting}"
    )


def _clients_line(view: dict[str, Any]) -> str:
    c = (view.get("progress") or {}).get("clients")
    if not c:
        return "no rotation has reported its clients yet"
    return (
        f"{c['reached']}/{c['total']} clients reached · {c['pending']} pending · "
        f"{c['at_risk']} at risk · {c['orphaned_outside_risk']} cut off outside accepted risk "
        f"({c['sites_reporting']} site(s) reporting)"
    )


def _forecast_line(view: dict[str, Any]) -> str:
    forecast = (view.get("progress") or {}).get("forecast_end")
    if forecast:
        return f"forecast end {short_time(forecast)} (at the pace so far; windows not foreseen)"
    return "forecast end: after the first rotation completes"


def _site_clients(site: dict[str, Any]) -> str:
    c = site.get("clients")
    if not c:
        return ""
    risk = f" ({c['at_risk']} at risk)" if c.get("at_risk") else ""
    return f"{c['reached']}/{c['total']}{risk}"


def _decision_lines(view: dict[str, Any]) -> list[Text]:
    lines = []
    for d in (view.get("progress") or {}).get("decisions_waiting") or []:
        if d.get("scope") == "campaign":
            hint = f"certrotate campaign approve {view['id']} --decision continue|abort"
            text = f"campaign {d['kind']}: {d['reason']} — {hint}"
        else:
            options = "|".join(d.get("options") or []) or "proceed"
            verb = (
                f"certrotate approve {d['rotation_id']}"
                if d["kind"] == "approval"
                else f"certrotate decide {d['rotation_id']} --decision {options} --reason ..."
            )
            text = f"{d['site']} ({d['rotation_id']}) {d['kind']}: {d['reason']} — {verb}"
        lines.append(Text(text, style="yellow"))
    return lines


def render_campaign(view: dict[str, Any]) -> RenderableType:
    """Headline, clients summed and forecast, the sites by wave, and every decision waiting."""
    table = Table(box=None)
    for column in ("WAVE", "SITE", "STATE", "ROTATION", "FARM", "CLIENTS", "NOTE"):
        table.add_column(column)
    for wave in view["plan"]:
        for site in wave["sites"]:
            add_plain_row(
                table, str(wave["wave"]), site["site"], site["status"],
                site.get("rotation_id") or "", site["farm"], _site_clients(site),
                site.get("note") or "",
            )  # fmt: skip
    parts: list[RenderableType] = [
        plain(headline(view)), plain(_clients_line(view)), plain(_forecast_line(view)), table,
    ]  # fmt: skip
    decisions = _decision_lines(view)
    if decisions:
        parts.append(Text("decisions waiting:", style="bold yellow"))
        parts.extend(decisions)
    elif view.get("decision_waiting"):
        parts.append(Text(
            f"an approver decides with `certrotate campaign approve {view['id']} "
            "--decision continue|abort`", style="yellow",
        ))  # fmt: skip
    return Group(*parts)


def outcome_code(view: dict[str, Any]) -> int | None:
    if view["state"] in ENDED:
        return ENDED[view["state"]]
    return EXIT_NEEDS_OPERATOR if view["state"] in WAITING else None


def watch_campaign(
    api: ApiClient, campaign_id: str, *, interval: float, as_json: bool, console: Console
) -> int:
    """Follow the campaign until it ends or waits for someone; the exit code it ends with."""
    try:
        return _watch(api, campaign_id, interval=interval, as_json=as_json, console=console)
    except KeyboardInterrupt:
        click.echo(
            f"stopped watching; the campaign goes on (certrotate campaign status {campaign_id})",
            err=True,
        )
        return EXIT_INTERRUPTED


def _watch(
    api: ApiClient, campaign_id: str, *, interval: float, as_json: bool, console: Console
) -> int:
    def fetch() -> dict[str, Any]:
        return patiently(lambda: dict(api.get(f"/v1/campaigns/{campaign_id}")), interval=interval)

    view = dict(api.get(f"/v1/campaigns/{campaign_id}"))
    if as_json or not console.is_terminal:
        last = ""
        while True:
            shown = (
                json.dumps(view, default=str, sort_keys=True)
                if as_json
                else f"{headline(view)} · {_clients_line(view)}"
            )
            if shown != last:
                if as_json:
                    click.echo(shown)
                else:
                    console.print(plain(f"{time.strftime('%H:%M:%S')}  {shown}"))
                last = shown
            if (code := outcome_code(view)) is not None:
                break
            time.sleep(interval)
            view = fetch()
        if not as_json:
            console.print(render_campaign(view))
    else:
        with Live(render_campaign(view), console=console, refresh_per_second=4) as live:
            while (code := outcome_code(view)) is None:
                time.sleep(interval)
                view = fetch()
                live.update(render_campaign(view))
    stderr_console().print(plain(_ending(view, code)))
    return code


def _ending(view: dict[str, Any], code: int) -> str:
    if code == EXIT_NEEDS_OPERATOR:
        decision = view.get("decision_waiting")
        if decision:
            return (
                f"campaign {view['id']} is {view['state']}: {decision['reason']} — "
                f"certrotate campaign approve {view['id']} --decision continue|abort"
            )
        return f"campaign {view['id']} is paused — certrotate campaign resume {view['id']}"
    return f"campaign {view['id']} {view['state']}"
