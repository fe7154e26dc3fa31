"""What an operator does to a running rotation: approve, decide, pause, resume, cancel."""

from __future__ import annotations

from typing import Any

import click

from certrotate import rotation_view
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.exit_codes import EXIT_CODES_EPILOG
from certrotate.client.output import json_option, print_result


def _print_rotation(view: dict[str, Any], as_json: bool) -> None:
    """After an operator action: the new state in one line (or the whole view as JSON)."""
    print_result(view, as_json=as_json, line=rotation_view.rotation_line)


@click.command(
    name="approve",
    help="Approve the swap of a rotation that requires an approval.",
    epilog=EXIT_CODES_EPILOG,
)
@click.argument("rotation_id")
@click.option("--note", default="", help="Kept in the rotation's history.")
@json_option
@api_command
def approve(api: ApiClient, rotation_id: str, note: str, as_json: bool) -> None:
    _print_rotation(api.post(f"/v1/rotations/{rotation_id}/approve", {"note": note}), as_json)


@click.command(
    name="decide",
    help="Answer a rotation that awaits a decision (the options it offers are in its view).",
    epilog=EXIT_CODES_EPILOG,
)
@click.argument("rotation_id")
@click.option(
    "--decision", required=True,
    type=click.Choice(["extend", "proceed", "abort", "retry", "compensate", "mark_done"]),
    help="extend: wait longer; proceed: accept the at-risk clients; abort: roll back; retry:"
    " send the unanswered command again; compensate: stop waiting and roll back; mark_done:"
    " the step was done by hand (only where the rotation offers it).",
)  # fmt: skip
@click.option(
    "--reason", default="", help="Why (required for proceed, abort, compensate and mark_done)."
)
@click.option("--change-id", help="The change ticket that covers the decision.")
@click.option("--extend-days", type=click.FloatRange(min=0, max=365, min_open=True))
@json_option
@api_command
def decide(
    api: ApiClient,
    rotation_id: str,
    decision: str,
    reason: str,
    change_id: str | None,
    extend_days: float | None,
    as_json: bool,
) -> None:
    if decision in ("proceed", "abort", "compensate", "mark_done") and not reason.strip():
        raise click.UsageError(f"a {decision} decision needs --reason")
    if extend_days is not None and decision != "extend":
        raise click.UsageError("--extend-days goes with --decision extend")
    body: dict[str, Any] = {"decision": decision, "reason": reason}
    if change_id:
        body["change_id"] = change_id
    if extend_days is not None:
        body["extend_days"] = extend_days
    _print_rotation(api.post(f"/v1/rotations/{rotation_id}/decide", body), as_json)


@click.command(
    name="pause",
    help="Hold a rotation: no new command is sent until it is resumed.",
    epilog=EXIT_CODES_EPILOG,
)
@click.argument("rotation_id")
@click.option("--reason", default="")
@json_option
@api_command
def pause(api: ApiClient, rotation_id: str, reason: str, as_json: bool) -> None:
    _print_rotation(api.post(f"/v1/rotations/{rotation_id}/pause", {"reason": reason}), as_json)


@click.command(name="resume", help="Resume a paused rotation.", epilog=EXIT_CODES_EPILOG)
@click.argument("rotation_id")
@json_option
@api_command
def resume(api: ApiClient, rotation_id: str, as_json: bool) -> None:
    _print_rotation(api.post(f"/v1/rotations/{rotation_id}/resume"), as_json)


@click.command(
    name="cancel",
    help="Cancel a rotation: what was done is undone (compensation).",
    epilog=EXIT_CODES_EPILOG,
)
@click.argument("rotation_id")
@click.option("--reason", required=True, help="Kept in the rotation's history.")
@json_option
@api_command
def cancel(api: ApiClient, rotation_id: str, reason: str, as_json: bool) -> None:
    if not reason.strip():
        raise click.UsageError("--reason must not be empty")
    _print_rotation(api.post(f"/v1/rotations/{rotation_id}/cancel", {"reason": reason}), as_json)
