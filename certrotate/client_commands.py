"""`certrotate` commands that drive a running certrotate over its REST API.

Every command takes --api URL (env CERTROTATE_API_URL, default http://127.0.0.1:8080) and an
API token: --token-file FILE, --token TOKEN, or env CERTROTATE_API_TOKEN(_FILE).

Exit codes (a script can rely on them):
  0  success (`rotate --wait`, `status --watch`, `events --follow`: the rotation completed)
  1  the API refused the request (4xx: its title, detail and code are printed)
  2  usage error (bad or missing options, unreadable files)
  3  the API cannot be reached, timed out, or failed (5xx)
  4  the rotation ended compensated or failed
  5  the rotation waits for an operator: paused, a decision pending, or an approval needed
  130  Ctrl-C while watching or following (the rotation itself goes on)

While watching (--wait, --watch, --follow) an unavailable API is retried for 60 s before
the command gives up with 3, so a watch outlives a restart of the orchestrator.
"""

from __future__ import annotations

import base64
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from click.core import ParameterSource
from rich.console import Console
from rich.live import Live
from rich.table import Table

from certrotate import render
from certrotate.api_client import (
    API_TOKEN_ENV,
    API_TOKEN_FILE_ENV,
    API_URL_ENV,
    DEFAULT_API_URL,
    ApiClient,
    ApiRefusedError,
    ApiUnavailableError,
    TokenMissingError,
    resolve_token,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_ROTATION_FAILED = 4
EXIT_NEEDS_OPERATOR = 5
EXIT_INTERRUPTED = 130  # Ctrl-C while watching: the rotation itself goes on

# How long --watch/--wait/--follow keep retrying an unavailable API before giving up (exit 3).
UNAVAILABLE_PATIENCE_S = 60.0

EXIT_CODES_EPILOG = (
    "\b\nExit codes:\n"
    "  0  success (--wait/--watch/--follow: the rotation completed)\n"
    "  1  the API refused the request (4xx)\n"
    "  2  usage error\n"
    "  3  the API cannot be reached, or failed (5xx)\n"
    "  4  the rotation ended compensated or failed\n"
    "  5  the rotation waits for an operator (paused, decision, approval)\n"
    "  130  interrupted (Ctrl-C) while watching; the rotation goes on"
)

TERMINAL = {"completed", "compensated", "failed"}
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


# --- plumbing -----------------------------------------------------------------------------


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stdout() -> Console:
    # Piped into a file or a pager, tables get room instead of the 80 columns of a dumb tty.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


def _fail(message: str, code: int) -> click.exceptions.Exit:
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)


def _transport() -> httpx.BaseTransport | None:
    """A transport handed in by the caller's context (tests), else the network."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(dict) if ctx else None
    return obj.get("api_transport") if obj else None


# What to do in CLI terms when the API refuses for these reasons.
HINTS = {
    "credentials_missing": "pass the SEPM account: --username NAME --password-file FILE",
    "unknown_site": "add it first: certrotate sites add NAME ... (see certrotate sites list)",
    "idempotency_key_reused": "use a new --idempotency-key for a new rotation",
}


def api_command(f: F) -> F:
    """Add --api/--token/--token-file, pass `api` (an ApiClient), map API errors to exit codes."""

    @click.option(
        "--api",
        "certrotate_api_url",
        envvar=API_URL_ENV,
        default=DEFAULT_API_URL,
        show_default=True,
        metavar="URL",
        help=f"The certrotate API (env {API_URL_ENV}).",
    )
    @click.option(
        "--token",
        metavar="TOKEN",
        help=f"API token (env {API_TOKEN_ENV}); prefer --token-file.",
    )
    @click.option(
        "--token-file",
        type=click.Path(dir_okay=False),
        help=f"File holding the API token (env {API_TOKEN_FILE_ENV}).",
    )
    @functools.wraps(f)
    def wrapper(
        *args: Any, certrotate_api_url: str, token: str | None, token_file: str | None, **kw: Any
    ) -> Any:
        ctx = click.get_current_context()
        given = ctx.meta.setdefault("certrotate.api", {})
        if isinstance(ctx.command, click.Group) and ctx.invoked_subcommand:
            # `tasks --token-file F confirm ID`: the subcommand uses what the group was given.
            given.update(token=token, token_file=token_file)
            if ctx.get_parameter_source("certrotate_api_url") != ParameterSource.DEFAULT:
                given["url"] = certrotate_api_url
            return None
        if ctx.get_parameter_source("certrotate_api_url") == ParameterSource.DEFAULT:
            certrotate_api_url = given.get("url", certrotate_api_url)
        token = token or given.get("token")
        token_file = token_file or given.get("token_file")
        try:
            secret = resolve_token(token, token_file)
        except TokenMissingError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            with ApiClient(certrotate_api_url, secret, transport=_transport()) as api:
                return f(*args, api=api, **kw)
        except ApiRefusedError as exc:
            for error in exc.errors:
                if error.get("field"):
                    click.echo(f"  {error['field']}: {error.get('message')}", err=True)
            hint = HINTS.get(exc.code or "")
            raise _fail(str(exc) + (f"\nhint: {hint}" if hint else ""), EXIT_REFUSED) from None
        except ApiUnavailableError as exc:
            raise _fail(str(exc), EXIT_UNAVAILABLE) from None

    return wrapper  # type: ignore[return-value]


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def read_secret_file(path: str, what: str) -> str:
    """The first line of a file (a password file may end with a newline)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=what) from None
    value = text.splitlines()[0] if text else ""
    if not value:
        raise click.BadParameter(f"{path} is empty", param_hint=what)
    return value


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def obtain_password(password_file: str | None, *, what: str, option: str) -> str:
    """From the file, else a hidden prompt on a terminal; never from the command line."""
    if password_file:
        return read_secret_file(password_file, option)
    if stdin_is_terminal():
        return str(click.prompt(what.capitalize(), hide_input=True))
    raise click.UsageError(f"{what} is needed: pass {option} FILE (or run on a terminal)")


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


def _ending_message(view: dict[str, Any], code: int) -> str:
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


def patiently(call: Callable[[], T], *, interval: float, patience: float) -> T:
    """The call's answer, retried while the API is unavailable for up to `patience` seconds:
    a watch that lasts days must outlive an orchestrator restart."""
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
        return patiently(
            lambda: dict(api.get(f"/v1/rotations/{rotation_id}")),
            interval=interval,
            patience=UNAVAILABLE_PATIENCE_S,
        )

    view = dict(api.get(f"/v1/rotations/{rotation_id}"))
    if as_json or not console.is_terminal:
        while True:
            if as_json:
                text = json.dumps(view, default=str, sort_keys=True)
                if text != last_json:
                    click.echo(text)
                    last_json = text
            else:
                line = render.rotation_line(view)
                if line != last_line:
                    console.print(f"{time.strftime('%H:%M:%S')}  {line}")
                    last_line = line
            code = outcome_code(view)
            if code is not None:
                break
            time.sleep(interval)
            view = fetch()
        if not as_json:
            console.print(render.rotation_panel(view))
    else:
        with Live(render.rotation_panel(view), console=console, refresh_per_second=4) as live:
            while (code := outcome_code(view)) is None:
                time.sleep(interval)
                view = fetch()
                live.update(render.rotation_panel(view))
    _stderr().print(_ending_message(view, code))
    return code


def _rotation_done(api: ApiClient, view: dict[str, Any], as_json: bool) -> None:
    """After an operator action: the new state in one line (or the whole view as JSON)."""
    if as_json:
        _print_json(view)
    else:
        click.echo(render.rotation_line(view))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


# --- rotations ----------------------------------------------------------------------------

JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")
EXTENSIONS = {
    ".p12": "pkcs12",
    ".pfx": "pkcs12",
    ".jks": "jks",
    ".keystore": "jks",
    ".pem": "pem",
    ".crt": "pem",
    ".cer": "pem",
}


def detect_format(path: Path, data: bytes) -> str:
    """pkcs12, jks or pem, from the content first (it cannot lie), then the file extension."""
    head = data.lstrip()[:64]
    if head.startswith(b"-----BEGIN"):
        return "pem"
    if data[:4] in JKS_MAGIC:
        return "jks"
    by_name = EXTENSIONS.get(path.suffix.lower())
    if by_name and by_name != "pem":
        return by_name
    if data[:1] == b"\x30":  # a DER SEQUENCE: PKCS#12 is the DER keystore SEPM takes
        return "pkcs12"
    raise click.BadParameter(
        f"cannot tell the format of {path.name}: pass --format pkcs12|jks|pem",
        param_hint="--bundle",
    )


def certificate_upload(
    bundle: str, fmt: str, key: str | None, password_file: str | None
) -> dict[str, Any]:
    """The `certificate` part of a rotation request, read from the files given."""
    path = Path(bundle)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {bundle}: {exc.strerror}", param_hint="--bundle"
        ) from None
    if not data:
        raise click.BadParameter(f"{bundle} is empty", param_hint="--bundle")
    if fmt == "auto":
        fmt = detect_format(path, data)
    upload: dict[str, Any] = {"format": fmt, "data_b64": base64.b64encode(data).decode()}
    key_data = b""
    if key is not None:
        if fmt != "pem":
            raise click.UsageError(f"--key goes with a PEM bundle; this bundle is {fmt}")
        try:
            key_data = Path(key).read_bytes()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {key}: {exc.strerror}", param_hint="--key"
            ) from None
        upload["key_b64"] = base64.b64encode(key_data).decode()
    elif fmt == "pem" and b"PRIVATE KEY-----" not in data:
        raise click.UsageError(
            f"{path.name} holds no private key: pass the key file with --key FILE"
        )
    needs_password = fmt in ("pkcs12", "jks") or b"ENCRYPTED" in (key_data or data)
    if needs_password:
        what = "the private key's password" if fmt == "pem" else f"the {fmt} keystore password"
        upload["password"] = obtain_password(password_file, what=what, option="--password-file")
    elif password_file:
        upload["password"] = read_secret_file(password_file, "--password-file")
    return upload


def rotation_options(
    *,
    approval_required: bool,
    stale_horizon_days: float | None,
    threshold: float | None,
    max_wait_days: float | None,
    orphan_risk_budget: int,
    window_cron: str | None,
    window_minutes: int | None,
    window_tz: str,
) -> dict[str, Any]:
    options: dict[str, Any] = {"require_approval": approval_required}
    if stale_horizon_days is not None:
        options["stale_horizon_days"] = stale_horizon_days
    if threshold is not None:
        options["propagation_threshold"] = threshold / 100.0
    if max_wait_days is not None:
        options["max_wait_days"] = max_wait_days
    if orphan_risk_budget:
        options["orphan_risk_budget"] = orphan_risk_budget
    if window_cron or window_minutes:
        if not (window_cron and window_minutes):
            raise click.UsageError(
                "a maintenance window needs both --window-cron and --window-minutes"
            )
        options["maintenance_window"] = {
            "cron": window_cron,
            "duration_minutes": window_minutes,
            "timezone": window_tz,
        }
    return options


@click.command(epilog=EXIT_CODES_EPILOG)
@click.option("--site", required=True, help="The site to rotate (see `certrotate sites list`).")
@click.option(
    "--bundle",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The new certificate with its private key: PKCS#12, JKS or PEM.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "pkcs12", "jks", "pem"]),
    default="auto",
    show_default=True,
    help="Bundle format; auto reads it from the content and the file extension.",
)
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="PEM private key file.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="File whose first line is the keystore password (else prompted on a terminal).",
)
@click.option("--idempotency-key", help="Re-sending with the same key returns the same rotation.")
@click.option("--change-id", help="Your change ticket, kept in the rotation's history.")
@click.option("--approval-required", is_flag=True, help="Hold the swap until someone approves.")
@click.option("--stale-horizon-days", type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, max=100, min_open=True),
    help="Percent of recently seen clients that must have the policy (default 100).",
)
@click.option("--max-wait-days", type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--orphan-risk-budget",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Clients that may be cut off without stopping for a decision (needs --reason).",
)
@click.option("--reason", help="Why an orphan-risk budget above 0 is acceptable.")
@click.option("--window-cron", help="Maintenance window opening, cron syntax ('0 22 * * 1-5').")
@click.option("--window-minutes", type=click.IntRange(min=1), help="Maintenance window length.")
@click.option("--window-tz", default="UTC", show_default=True, help="Maintenance window time zone.")
@click.option("--wait", is_flag=True, help="Follow the rotation until it ends or needs someone.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
@api_command
def rotate(
    api: ApiClient,
    site: str,
    bundle: str,
    fmt: str,
    key: str | None,
    password_file: str | None,
    idempotency_key: str | None,
    change_id: str | None,
    approval_required: bool,
    stale_horizon_days: float | None,
    threshold: float | None,
    max_wait_days: float | None,
    orphan_risk_budget: int,
    reason: str | None,
    window_cron: str | None,
    window_minutes: int | None,
    window_tz: str,
    wait: bool,
    interval: float,
) -> None:
    """Start rotating a site's certificate; prints the rotation id."""
    if orphan_risk_budget and not (reason or "").strip():
        raise click.UsageError("--orphan-risk-budget above 0 needs --reason")
    body: dict[str, Any] = {
        "site": site,
        "options": rotation_options(
            approval_required=approval_required,
            stale_horizon_days=stale_horizon_days,
            threshold=threshold,
            max_wait_days=max_wait_days,
            orphan_risk_budget=orphan_risk_budget,
            window_cron=window_cron,
            window_minutes=window_minutes,
            window_tz=window_tz,
        ),
        "certificate": certificate_upload(bundle, fmt, key, password_file),
    }
    if change_id:
        body["change_id"] = change_id
    if orphan_risk_budget:
        body["orphan_risk_budget_reason"] = reason
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    response = api.request("POST", "/v1/rotations", json=body, headers=headers)
    view = response.json()
    if response.status_code == 200:
        _stderr().print(f"the idempotency key matched rotation {view['id']}: nothing new started")
    click.echo(view["id"])
    if wait:
        raise click.exceptions.Exit(
            watch_rotation(api, view["id"], interval=interval, as_json=False, console=_stderr())
        )


@click.command(epilog=EXIT_CODES_EPILOG)
@click.argument("rotation_id")
@click.option("--watch", is_flag=True, help="Keep showing it until it ends or needs someone.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
@json_option
@api_command
def status(api: ApiClient, rotation_id: str, watch: bool, interval: float, as_json: bool) -> None:
    """Show a rotation: step, propagation bars, gates, servers."""
    if watch:
        raise click.exceptions.Exit(
            watch_rotation(api, rotation_id, interval=interval, as_json=as_json, console=_stdout())
        )
    view = api.get(f"/v1/rotations/{rotation_id}")
    if as_json:
        _print_json(view)
    else:
        _stdout().print(render.rotation_panel(view))


@click.command(epilog=EXIT_CODES_EPILOG)
@click.argument("rotation_id")
@click.option("--follow", is_flag=True, help="Keep printing new events until the rotation ends.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
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
            _stdout().print(render.events_table(items))
        return

    def new_events(after: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        # Read the state first: events written before it are then all in the next read.
        view = api.get(f"/v1/rotations/{rotation_id}")
        return view, list(api.events(rotation_id, after=after))

    try:
        while True:
            view, items = patiently(
                functools.partial(new_events, seen),
                interval=interval,
                patience=UNAVAILABLE_PATIENCE_S,
            )
            for item in items:
                seen = max(seen, int(item["seq"]))
                click.echo(json.dumps(item, default=str) if as_json else render.event_line(item))
            if view.get("state") in TERMINAL:
                code = outcome_code(view)
                _stderr().print(_ending_message(view, code or EXIT_OK))
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
        _print_json(items)
    elif not items:
        _stderr().print("no rotations")
    else:
        _stdout().print(render.rotations_table(items))


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
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for a spreadsheet or ITSM).")
@json_option
@api_command
def at_risk(
    api: ApiClient,
    rotation_id: str,
    client_status: str,
    watch_id: str | None,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Clients that have not got the awaited policy (at risk of being orphaned)."""
    path = f"/v1/rotations/{rotation_id}/at-risk"
    params = {"status": client_status, "watch_id": watch_id}
    if as_csv:
        click.echo(api.text(path, format="csv", **params), nl=False)
        return
    body = api.get(path, format="json", **params)
    clients = body.get("clients", []) if isinstance(body, dict) else body
    if as_json:
        _print_json(body)
        return
    table = Table(title=f"{len(clients)} clients ({client_status})", title_justify="left", box=None)
    for column in ("computer", "group", "online", "last seen", "days offline", "policy serial"):
        table.add_column(column)
    for client in clients:
        table.add_row(
            str(client.get("computerName")),
            str(client.get("groupFullPathName")),
            "yes" if client.get("onlineStatus") else "no",
            render.short_time(client.get("lastUpdateTimeUtc")),
            str(client.get("daysOffline")),
            str(client.get("profileSerialNo")),
        )
    _stdout().print(table)


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
    _rotation_done(api, api.post(f"/v1/rotations/{rotation_id}/approve", {"note": note}), as_json)


@click.command(
    name="decide",
    help="Answer a rotation that awaits a decision (extend, proceed or abort).",
    epilog=EXIT_CODES_EPILOG,
)
@click.argument("rotation_id")
@click.option(
    "--decision", required=True, type=click.Choice(["extend", "proceed", "abort"]),
    help="extend: wait longer; proceed: accept the at-risk clients; abort: roll back.",
)  # fmt: skip
@click.option("--reason", default="", help="Why (required for proceed and abort).")
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
    if decision in ("proceed", "abort") and not reason.strip():
        raise click.UsageError(f"a {decision} decision needs --reason")
    if extend_days is not None and decision != "extend":
        raise click.UsageError("--extend-days goes with --decision extend")
    body: dict[str, Any] = {"decision": decision, "reason": reason}
    if change_id:
        body["change_id"] = change_id
    if extend_days is not None:
        body["extend_days"] = extend_days
    _rotation_done(api, api.post(f"/v1/rotations/{rotation_id}/decide", body), as_json)


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
    _rotation_done(api, api.post(f"/v1/rotations/{rotation_id}/pause", {"reason": reason}), as_json)


@click.command(name="resume", help="Resume a paused rotation.", epilog=EXIT_CODES_EPILOG)
@click.argument("rotation_id")
@json_option
@api_command
def resume(api: ApiClient, rotation_id: str, as_json: bool) -> None:
    _rotation_done(api, api.post(f"/v1/rotations/{rotation_id}/resume"), as_json)


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
    _rotation_done(
        api, api.post(f"/v1/rotations/{rotation_id}/cancel", {"reason": reason}), as_json
    )


# --- operator tasks -----------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option("--rotation", "rotation_id", help="Only this rotation's tasks.")
@click.option(
    "--status",
    "task_status",
    type=click.Choice(["open", "confirmed", "done", "all"]),
    help="Default: open and confirmed.",
)
@json_option
@api_command
def tasks(api: ApiClient, rotation_id: str | None, task_status: str | None, as_json: bool) -> None:
    """Manual steps waiting for a person (manual host-operation driver)."""
    items = api.get("/v1/tasks", rotation_id=rotation_id, status=task_status)["items"]
    if as_json:
        _print_json(items)
        return
    if not items:
        _stderr().print("no operator tasks")
        return
    console = _stdout()
    for task in items:
        console.rule(
            f"{task['task_id']} · {task['status']} · {task.get('server') or task.get('site')}"
        )
        console.print(f"[bold]{task.get('title')}[/bold]  (rotation {task.get('rotation_id')})")
        if task.get("instructions"):
            console.print(str(task["instructions"]))
        if task.get("verification"):
            console.print(f"[dim]verified by: {task['verification']}[/dim]")
        if task.get("last_failure"):
            console.print(f"[red]last confirmation not verified: {task['last_failure']}[/red]")


@tasks.command(name="confirm")
@click.argument("task_id")
@click.option("--note", default="")
@json_option
@api_command
def confirm_task(api: ApiClient, task_id: str, note: str, as_json: bool) -> None:
    """Say the manual step is done; the service then checks it by observation."""
    task = api.post(f"/v1/tasks/{task_id}/confirm", {"note": note})
    if as_json:
        _print_json(task)
    else:
        click.echo(f"task {task['task_id']}: {task['status']} (the service now verifies it)")


# --- inventory ----------------------------------------------------------------------------


@click.group()
def sites() -> None:
    """SEPM sites in the inventory."""


@sites.command(name="list")
@json_option
@api_command
def sites_list(api: ApiClient, as_json: bool) -> None:
    """Every site."""
    items = api.get("/v1/sites")["items"]
    if as_json:
        _print_json(items)
        return
    table = Table(box=None)
    for column in ("site", "version", "api url", "partners", "servers", "driver", "credentials"):
        table.add_column(column, overflow="fold")
    for site in items:
        table.add_row(*_site_row(site))
    _stdout().print(table)


def _site_row(site: dict[str, Any]) -> list[str]:
    host_ops = site.get("host_ops") or {}
    has_creds = site.get("credentials_set")
    return [
        str(site.get("name")),
        str(site.get("version")),
        str(site.get("api_url")),
        ", ".join(site.get("replication_partners") or []),
        ", ".join(site.get("servers") or []),
        str(host_ops.get("driver", "")),
        "—" if has_creds is None else ("set" if has_creds else "none"),
    ]


@sites.command(name="show")
@click.argument("name")
@json_option
@api_command
def sites_show(api: ApiClient, name: str, as_json: bool) -> None:
    """One site, with everything the inventory holds (never its passwords)."""
    site = api.get(f"/v1/sites/{name}")
    if as_json:
        _print_json(site)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in site.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "—"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
        grid.add_row(key, str(value))
    _stdout().print(grid)


def _pem_files(paths: tuple[str, ...]) -> list[str]:
    pems = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"cannot read {path}: {exc}", param_hint="--trust-pem"
            ) from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise click.BadParameter(f"{path} holds no PEM certificate", param_hint="--trust-pem")
        pems.append(text)
    return pems


@sites.command(name="add")
@click.option(
    "--name", required=True, help="The site's name in certrotate (letters, digits, . _ -)."
)
@click.option(
    "--api-url", required=True, help="The SEPM REST API, e.g. https://sepm-a1:8446/sepm/api/v1"
)
@click.option("--version", "sepm_version", required=True, help="SEPM version, e.g. 14.3.9000")
@click.option(
    "--partner", "partners", multiple=True, help="A replication partner site (repeatable)."
)
@click.option(
    "--trust-pem",
    "trust_pems",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A CA certificate that signs the SEPM servers' TLS certificates (repeatable).",
)
@click.option("--driver", type=click.Choice(["twin", "winrm", "manual"]), required=True)
@click.option("--endpoint", help="The host-operation endpoint (twin URL; WinRM needs none).")
@click.option("--username", help="The SEPM API account.")
@click.option("--domain", default="", help="The SEPM API account's domain.")
@click.option(
    "--password-file", type=click.Path(dir_okay=False), help="The SEPM account's password."
)
@click.option("--host-username", help="The WinRM account on the SEPM servers.")
@click.option("--host-password-file", type=click.Path(dir_okay=False), help="Its password.")
@json_option
@api_command
def sites_add(
    api: ApiClient,
    name: str,
    api_url: str,
    sepm_version: str,
    partners: tuple[str, ...],
    trust_pems: tuple[str, ...],
    driver: str,
    endpoint: str | None,
    username: str | None,
    domain: str,
    password_file: str | None,
    host_username: str | None,
    host_password_file: str | None,
    as_json: bool,
) -> None:
    """Add a site, or replace one of the same name. Passwords come from files or a prompt."""
    body: dict[str, Any] = {
        "name": name,
        "api_url": api_url,
        "version": sepm_version,
        "replication_partners": list(partners),
        "trusted_certificates_pem": _pem_files(trust_pems),
        "host_ops": {"driver": driver, "endpoint": endpoint},
    }
    if password_file and not username:
        raise click.UsageError("--password-file goes with --username")
    if username:
        password = obtain_password(
            password_file, what=f"password of the SEPM account {username}", option="--password-file"
        )
        body["sepm_credentials"] = {"username": username, "password": password, "domain": domain}
    if host_password_file and not host_username:
        raise click.UsageError("--host-password-file goes with --host-username")
    if host_username:
        password = obtain_password(
            host_password_file,
            what=f"password of the host account {host_username}",
            option="--host-password-file",
        )
        body["host_ops_credentials"] = {"username": host_username, "password": password}
    site = api.post("/v1/sites", body)
    if as_json:
        _print_json(site)
    else:
        click.echo(f"site {site.get('name', name)} saved")


@sites.command(name="remove")
@click.argument("name")
@api_command
def sites_remove(api: ApiClient, name: str) -> None:
    """Remove a site (and the credentials kept for it)."""
    api.delete(f"/v1/sites/{name}")
    click.echo(f"site {name} removed")


@click.group()
def servers() -> None:
    """SEPM management servers in the inventory."""


@servers.command(name="list")
@click.option("--site")
@json_option
@api_command
def servers_list(api: ApiClient, site: str | None, as_json: bool) -> None:
    """Every server (or one site's)."""
    items = api.get("/v1/servers", site=site)["items"]
    if as_json:
        _print_json(items)
        return
    table = Table(box=None)
    for column in ("server", "site", "address", "hostnames", "version", "ports"):
        table.add_column(column)
    for server in items:
        ports = server.get("ports") or {}
        table.add_row(
            str(server.get("name")),
            str(server.get("site")),
            str(server.get("address")),
            ", ".join(server.get("hostnames") or []),
            str(server.get("version")),
            ", ".join(f"{k}={v}" for k, v in ports.items()),
        )
    _stdout().print(table)


def _ports(values: tuple[str, ...]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name or not number.isdigit() or not 0 < int(number) < 65536:
            raise click.BadParameter(
                f"{value!r}: use NAME=NUMBER, e.g. 8443=8443", param_hint="--port"
            )
        ports[name] = int(number)
    return ports


@servers.command(name="add")
@click.option("--name", required=True, help="The server's name in certrotate.")
@click.option("--site", required=True)
@click.option("--address", required=True, help="IP address or DNS name the services connect to.")
@click.option("--hostname", "hostnames", multiple=True, help="A name clients use (repeatable).")
@click.option("--version", "sepm_version", required=True)
@click.option(
    "--port", "ports", multiple=True,
    help="A SEPM TLS port as NAME=NUMBER, e.g. 8443=8443 or 443=10443 (repeatable).",
)  # fmt: skip
@json_option
@api_command
def servers_add(
    api: ApiClient,
    name: str,
    site: str,
    address: str,
    hostnames: tuple[str, ...],
    sepm_version: str,
    ports: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a server to a site, or replace one of the same name."""
    body = {
        "name": name,
        "site": site,
        "address": address,
        "hostnames": list(hostnames),
        "version": sepm_version,
        "ports": _ports(ports),
    }
    server = api.post("/v1/servers", body)
    if as_json:
        _print_json(server)
    else:
        click.echo(f"server {server.get('name', name)} saved in site {site}")


@servers.command(name="remove")
@click.argument("name")
@api_command
def servers_remove(api: ApiClient, name: str) -> None:
    """Remove a server from the inventory."""
    api.delete(f"/v1/servers/{name}")
    click.echo(f"server {name} removed")


# --- tokens -------------------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """API tokens (admin role)."""


@tokens.command(name="create")
@click.option("--name", required=True, help="Who or what uses it (e.g. itsm-integration).")
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "operator", "approver", "admin"])
)
@json_option
@api_command
def tokens_create(api: ApiClient, name: str, role: str, as_json: bool) -> None:
    """Create a token; it is printed once (stdout), only its hash is kept."""
    token = api.post("/v1/tokens", {"name": name, "role": role})
    if as_json:
        _print_json(token)
        return
    _stderr().print(f"token {token.get('id')} for {name} ({role}); it is shown only this once:")
    click.echo(token["token"])


@tokens.command(name="list")
@json_option
@api_command
def tokens_list(api: ApiClient, as_json: bool) -> None:
    """Every token (never the token itself)."""
    items = api.get("/v1/tokens")["items"]
    if as_json:
        _print_json(items)
        return
    table = Table(box=None)
    for column in ("id", "name", "role", "created", "revoked"):
        table.add_column(column)
    for token in items:
        table.add_row(
            str(token.get("id")),
            str(token.get("name")),
            str(token.get("role")),
            render.short_time(token.get("created_at")),
            render.short_time(token.get("revoked_at")) if token.get("revoked_at") else "",
        )
    _stdout().print(table)


@tokens.command(name="revoke")
@click.argument("token_id")
@api_command
def tokens_revoke(api: ApiClient, token_id: str) -> None:
    """Revoke a token: it stops working at once."""
    api.delete(f"/v1/tokens/{token_id}")
    click.echo(f"token {token_id} revoked")


CLIENT_COMMANDS: list[click.Command] = [
    rotate,
    status,
    events,
    list_rotations,
    at_risk,
    approve,
    decide,
    pause,
    resume,
    cancel,
    tasks,
    sites,
    servers,
    tokens,
]


def register_client_commands(group: click.Group) -> None:
    """Add the API client commands to the `certrotate` group."""
    for command in CLIENT_COMMANDS:
        _add_epilog(command)
        group.add_command(command)


def _add_epilog(command: click.Command) -> None:
    """Every client command's --help ends with the exit codes."""
    command.epilog = command.epilog or EXIT_CODES_EPILOG
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_epilog(sub)
