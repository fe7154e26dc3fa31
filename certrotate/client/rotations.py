"""Reading rotations: `status`, `events`, `list` and `at-risk`."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import click
from rich.table import Table

from certrotate import render, rotation_view
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.exit_codes import EXIT_CODES_EPILOG, EXIT_INTERRUPTED, EXIT_OK
from certrotate.client.output import json_option, print_json, stderr_console, stdout_console
from certrotate.client.watch import (
    TERMINAL,
    ending_message,
    interval_option,
    outcome_code,
    patiently,
    watch_rotation,
)


@click.command(epilog=EXIT_CODES_EPILOG)
@click.argument("rotation_id")
@click.option("--watch", is_flag=True, help="Keep showing it until it ends or needs someone.")
@interval_option
@json_option
@api_command
def status(api: ApiClient, rotation_id: str, watch: bool, interval: float, as_json: bool) -> None:
    """Show a rotation: step, propagation bars, gates, servers."""
    if watch:
        raise click.exceptions.Exit(
            watch_rotation(
                api, rotation_id, interval=interval, as_json=as_json, console=stdout_console()
            )
        )
    view = api.get(f"/v1/rotations/{rotation_id}")
    if as_json:
        print_json(view)
    else:
        stdout_console().print(rotation_view.rotation_panel(view))


@click.command(epilog=EXIT_CODES_EPILOG)
@click.argument("rotation_id")
@click.option("--follow", is_flag=True, help="Keep printing new events until the rotation ends.")
@interval_option
@json_option
@api_command
def events(api: ApiClient, rotation_id: str, follow: bool, interval: float, as_json: bool) -> None:
    """The rotation's history: every command, event and operator action (JSON: one per line)."""
    seen = 0
    if not follow:
        items = list(api.events(rotation_id))
        if as_json:
            for item in items:
                click.echo(json.dumps(item, default=str))
        else:
            stdout_console().print(render.events_table(items))
        return

    def new_events(after: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        # Read the state first: events written before it are then all in the next read.
        view = api.get(f"/v1/rotations/{rotation_id}")
        return view, list(api.events(rotation_id, after=after))

    try:
        while True:
            view, items = patiently(functools.partial(new_events, seen), interval=interval)
            for item in items:
                seen = max(seen, int(item["seq"]))
                click.echo(json.dumps(item, default=str) if as_json else render.event_line(item))
            if view.get("state") in TERMINAL:
                code = outcome_code(view)
                stderr_console().print(ending_message(view, code or EXIT_OK))
                raise click.exceptions.Exit(code or EXIT_OK)
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("stopped following; the rotation goes on", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.command(name="list")
@click.option(
    "--state",
    type=click.Choice(["running", "compensating", "paused", "completed", "compensated", "failed"]),
)
@click.option("--site")
@json_option
@api_command
def list_rotations(api: ApiClient, state: str | None, site: str | None, as_json: bool) -> None:
    """Rotations, newest first (every page)."""
    items = list(api.rotations(state=state, site=site))
    if as_json:
        print_json(items)
    elif not items:
        stderr_console().print("no rotations")
    else:
        stdout_console().print(render.rotations_table(items))


@click.command(name="at-risk")
@click.argument("rotation_id")
@click.option(
    "--status",
    "client_status",
    type=click.Choice(["at_risk", "straggler", "pending"]),
    default="at_risk",
    show_default=True,
)
@click.option("--watch-id", help="An earlier propagation watch of this rotation.")
@click.option(
    "--accepted",
    is_flag=True,
    help="The clients an approver accepted with proceed, exactly as recorded.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for a spreadsheet or ITSM).")
@json_option
@api_command
def at_risk(
    api: ApiClient,
    rotation_id: str,
    client_status: str,
    watch_id: str | None,
    accepted: bool,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Clients that have not got the awaited policy (at risk of being orphaned)."""
    path = f"/v1/rotations/{rotation_id}/at-risk"
    params: dict[str, str | None] = {"status": client_status, "watch_id": watch_id}
    if accepted:
        path, params = f"/v1/rotations/{rotation_id}/accepted-clients", {}
        client_status = "accepted at risk"
    if as_csv:
        click.echo(api.text(path, format="csv", **params), nl=False)
        return
    body = api.get(path, format="json", **params)
    clients = body.get("clients", []) if isinstance(body, dict) else body
    if as_json:
        print_json(body)
        return
    table = Table(title=f"{len(clients)} clients ({client_status})", title_justify="left", box=None)
    for column in ("computer", "group", "online", "last seen", "days offline", "policy serial"):
        table.add_column(column)
    for client in clients:
        render.add_plain_row(
            table,
            str(client.get("computerName")),
            str(client.get("groupFullPathName")),
            "yes" if client.get("onlineStatus") else "no",
            render.short_time(client.get("lastUpdateTimeUtc")),
            str(client.get("daysOffline")),
            str(client.get("profileSerialNo")),
        )
    stdout_console().print(table)
