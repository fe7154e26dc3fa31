"""Following a rotation until it ends or needs an operator, and the exit code it ends with."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.live import Live

from certrotate import rotation_view
from certrotate.api_client import ApiClient, ApiUnavailableError
from certrotate.client.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_NEEDS_OPERATOR,
    EXIT_OK,
    EXIT_ROTATION_FAILED,
)
from certrotate.client.output import stderr_console

# How long --watch/--wait/--follow keep retrying an unavailable API before giving up (exit 3).
UNAVAILABLE_PATIENCE_S = 60.0

TERMINAL = {"completed", "compensated", "failed"}
T = TypeVar("T")

interval_option = click.option(
    "--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True
)


def outcome_code(view: dict[str, Any]) -> int | None:
    """The exit code a finished watch ends with, or None while the rotation goes on alone."""
    state = view.get("state")
    if state == "completed":
        return EXIT_OK
    if state in ("compensated", "failed"):
        return EXIT_ROTATION_FAILED
    if state == "paused":
        return EXIT_NEEDS_OPERATOR
    gates = view.get("gates") or {}
    if "approval" in (gates.get("waiting_for") or []):
        return EXIT_NEEDS_OPERATOR
    return None


def ending_message(view: dict[str, Any], code: int) -> str:
    rid = view.get("id")
    if code == EXIT_OK:
        return f"rotation {rid} completed"
    if code == EXIT_ROTATION_FAILED:
        return (
            f"rotation {rid} ended {view.get('state')}: {view.get('reason') or 'no reason given'}"
        )
    pending = view.get("pending_decision")
    if pending:
        return (
            f"rotation {rid} awaits a decision: {pending.get('reason')} — "
            f"certrotate decide {rid} --decision {'|'.join(pending.get('options') or [])} --reason ..."
        )
    if (view.get("hold") or {}).get("paused"):
        return f"rotation {rid} is paused ({view['hold'].get('reason')}) — certrotate resume {rid}"
    return f"rotation {rid} waits for an approval — certrotate approve {rid}"


def patiently(call: Callable[[], T], *, interval: float) -> T:
    """The call's answer, retried while the API is unavailable for up to UNAVAILABLE_PATIENCE_S:
    a watch that lasts days must outlive an orchestrator restart."""
    patience = UNAVAILABLE_PATIENCE_S
    first_failure: float | None = None
    while True:
        try:
            return call()
        except ApiUnavailableError as exc:
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
                click.echo(f"warning: {exc}; retrying for {patience:.0f} s", err=True)
            if now - first_failure >= patience:
                raise
            time.sleep(max(interval, 0.5))


def watch_rotation(
    api: ApiClient, rotation_id: str, *, interval: float, as_json: bool, console: Console
) -> int:
    """Follow the rotation until it ends or needs an operator; return the exit code."""
    try:
        return _watch(api, rotation_id, interval=interval, as_json=as_json, console=console)
    except KeyboardInterrupt:
        click.echo(
            f"stopped watching; the rotation goes on (certrotate status {rotation_id})", err=True
        )
        return EXIT_INTERRUPTED


def _watch(
    api: ApiClient, rotation_id: str, *, interval: float, as_json: bool, console: Console
) -> int:
    last_line = ""
    last_json = ""

    def fetch() -> dict[str, Any]:
        return patiently(lambda: dict(api.get(f"/v1/rotations/{rotation_id}")), interval=interval)

    view = dict(api.get(f"/v1/rotations/{rotation_id}"))
    if as_json or not console.is_terminal:
        while True:
            if as_json:
                text = json.dumps(view, default=str, sort_keys=True)
                if text != last_json:
                    click.echo(text)
                    last_json = text
            else:
                line = rotation_view.rotation_line(view)
                if line != last_line:
                    console.print(f"{time.strftime('%H:%M:%S')}  {line}")
                    last_line = line
            code = outcome_code(view)
            if code is not None:
                break
            time.sleep(interval)
            view = fetch()
        if not as_json:
            console.print(rotation_view.rotation_panel(view))
    else:
        with Live(
            rotation_view.rotation_panel(view), console=console, refresh_per_second=4
        ) as live:
            while (code := outcome_code(view)) is None:
                time.sleep(interval)
                view = fetch()
                live.update(rotation_view.rotation_panel(view))
    stderr_console().print(ending_message(view, code))
    return code
