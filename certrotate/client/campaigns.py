"""`certrotate campaign`: many sites rotated in waves, under a cap and a failure budget."""

from __future__ import annotations

from typing import Any

import click

from certrotate.api_client import ApiClient
from certrotate.client.campaign_view import WAITING, headline, render_campaign, watch_campaign
from certrotate.client.connection import api_command
from certrotate.client.output import (
    json_option,
    print_items,
    print_json,
    print_result,
    stderr_console,
    stdout_console,
)
from certrotate.client.rotate import certificate_upload, rotation_options
from certrotate.client.watch import interval_option

_line = headline


def window_options(command: Any) -> Any:
    """--window-cron / --window-minutes / --window-tz, for a site's or a campaign's window."""
    for option in reversed([
        click.option("--window-cron", help="Maintenance window opening, cron ('0 22 * * 6')."),
        click.option("--window-minutes", type=click.IntRange(min=1, max=7 * 24 * 60),
                     help="How long the window stays open."),
        click.option("--window-tz", default="UTC", show_default=True,
                     help="The window's time zone (IANA, e.g. Europe/Paris)."),
    ]):  # fmt: skip
        command = option(command)
    return command


def maintenance_window(cron: str | None, minutes: int | None, tz: str) -> dict[str, Any] | None:
    if not (cron or minutes):
        return None
    if not (cron and minutes):
        raise click.UsageError("a maintenance window needs both --window-cron and --window-minutes")
    return {"cron": cron, "duration_minutes": minutes, "timezone": tz}


def _sites(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


@click.group(name="campaign")
def campaign() -> None:
    """Rotate many sites in waves: a canary first, a concurrency cap, one rotation per
    replication farm at a time, and a failure budget that halts the campaign."""


@campaign.command(name="create")
@click.argument("name")
@click.option(
    "--wave",
    "waves",
    multiple=True,
    help="An explicit wave: sites separated by commas; repeat in order (--wave a --wave b,c).",
)
@click.option(
    "--sites",
    help="Sites for a generated plan, in order, separated by commas (tag:<tag> for every site "
    "tagged so).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    help="Target every site carrying this tag, resolved now (repeatable; with or after --sites).",
)
@click.option("--canary", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--wave-size", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="One certificate for every site (its SANs are checked against each site's servers).",
)
@click.option(
    "--site-bundle",
    "site_bundles",
    multiple=True,
    metavar="SITE=FILE",
    help="A site's own certificate (repeat); overrides --bundle for that site.",
)
@click.option("--format", "fmt", type=click.Choice(["auto", "pkcs12", "jks", "pem"]),
              default="auto", show_default=True)  # fmt: skip
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="File whose first line is the keystore password (else prompted).")  # fmt: skip
@click.option("--max-concurrent", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--max-failures",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Halt (for an approver to continue or abort) when more rotations fail than this.",
)
@click.option("--approve-each-wave", is_flag=True, help="Each next wave waits for an approver.")
@click.option("--approval-required", is_flag=True, help="Each rotation holds before its swap.")
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, max=100, min_open=True),
    help="Percent of recently seen clients that must have the policy (default 100).",
)
@click.option("--change-id", help="Your change ticket, kept in every rotation's history.")
@click.option("--idempotency-key", help="Re-sending with the same key returns the same campaign.")
@window_options
@json_option
@api_command
def create(
    api: ApiClient,
    name: str,
    waves: tuple[str, ...],
    sites: str | None,
    tags: tuple[str, ...],
    canary: int,
    wave_size: int,
    bundle: str | None,
    site_bundles: tuple[str, ...],
    fmt: str,
    password_file: str | None,
    max_concurrent: int,
    max_failures: int,
    approve_each_wave: bool,
    approval_required: bool,
    threshold: float | None,
    change_id: str | None,
    idempotency_key: str | None,
    window_cron: str | None,
    window_minutes: int | None,
    window_tz: str,
    as_json: bool,
) -> None:
    """Pre-flight every site's certificate, then start the campaign; prints its id.

    A window (--window-*) holds every wave: no site starts, or swaps, outside it; a site's own
    window in the inventory holds that site too."""
    window = maintenance_window(window_cron, window_minutes, window_tz)
    generated = _sites(sites or "") + [f"tag:{t}" for t in tags]
    if bool(waves) == bool(generated):
        raise click.UsageError(
            "give either --wave (repeated) or --sites / --tag for a generated plan"
        )
    plan: dict[str, Any] = (
        {"waves": [_sites(w) for w in waves]}
        if waves
        else {"sites": generated, "canary": canary, "wave_size": wave_size}
    )
    per_site: dict[str, dict[str, Any]] = {}
    for given in site_bundles:
        site, sep, path = given.partition("=")
        if not sep or not site or not path:
            raise click.BadParameter(f"{given!r}: expected SITE=FILE", param_hint="--site-bundle")
        per_site[site] = certificate_upload(path, fmt, None, password_file)
    if bundle is None and not per_site:
        raise click.UsageError("give --bundle (one certificate for all) or --site-bundle")
    body: dict[str, Any] = {
        "name": name,
        "plan": plan,
        "certificates": per_site,
        "max_concurrent": max_concurrent,
        "max_failures": max_failures,
        "approve_each_wave": approve_each_wave,
        "options": rotation_options(
            approval_required=approval_required, stale_horizon_days=None, threshold=threshold,
            max_wait_days=None, orphan_risk_budget=0, window_cron=None, window_minutes=None,
            window_tz="UTC",
        ),
    }  # fmt: skip
    if bundle is not None:
        body["certificate"] = certificate_upload(bundle, fmt, None, password_file)
    if change_id:
        body["change_id"] = change_id
    if window is not None:
        body["window"] = window
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    response = api.request("POST", "/v1/campaigns", json=body, headers=headers)
    view = response.json()
    if response.status_code == 200:
        stderr_console().print(
            f"the idempotency key matched campaign {view['id']}: nothing new started"
        )
    if as_json:
        print_json(view)
    else:
        click.echo(view["id"])


@campaign.command(name="list")
@json_option
@api_command
def list_campaigns(api: ApiClient, as_json: bool) -> None:
    """Campaigns, newest first."""
    print_items(
        api.get("/v1/campaigns")["items"],
        as_json=as_json,
        columns=["ID", "NAME", "STATE", "WAVE", "SITES", "FAILURES", "WAITING"],
        row=lambda c: [
            c["id"], c["name"], c["state"], f"{c['current_wave']}/{c['waves']}",
            ", ".join(f"{n} {s}" for s, n in sorted(c["sites_by_state"].items())),
            f"{c['failures']}/{c['tolerated_failures']}",
            (c.get("decision_waiting") or {}).get("kind", ""),
        ],
    )  # fmt: skip


@campaign.command(name="status")
@click.argument("campaign_id")
@click.option("--watch", is_flag=True, help="Keep showing it live until it ends or waits.")
@interval_option
@json_option
@api_command
def status(api: ApiClient, campaign_id: str, watch: bool, interval: float, as_json: bool) -> None:
    """Progress: sites by state per wave, clients summed, the forecast end, decisions waiting.

    Exit 5 when the campaign waits for someone (paused, halted, or a wave to approve); with
    --watch, 0 when it completed and 4 when it was cancelled or aborted."""
    if watch:
        raise click.exceptions.Exit(
            watch_campaign(
                api, campaign_id, interval=interval, as_json=as_json, console=stdout_console()
            )
        )
    view = api.get(f"/v1/campaigns/{campaign_id}")
    if as_json:
        print_json(view)
    else:
        stdout_console().print(render_campaign(view))
    if view["state"] in WAITING:
        raise click.exceptions.Exit(5)


def _action(api: ApiClient, campaign_id: str, action: str, body: Any, as_json: bool) -> None:
    print_result(api.post(f"/v1/campaigns/{campaign_id}/{action}", body), as_json=as_json,
                 line=_line)  # fmt: skip


@campaign.command(name="pause")
@click.argument("campaign_id")
@click.option("--reason", default="")
@json_option
@api_command
def pause(api: ApiClient, campaign_id: str, reason: str, as_json: bool) -> None:
    """Start no new rotation; the running ones go on."""
    _action(api, campaign_id, "pause", {"reason": reason}, as_json)


@campaign.command(name="resume")
@click.argument("campaign_id")
@json_option
@api_command
def resume(api: ApiClient, campaign_id: str, as_json: bool) -> None:
    """Carry on where the campaign was paused."""
    _action(api, campaign_id, "resume", None, as_json)


@campaign.command(name="cancel")
@click.argument("campaign_id")
@click.option("--reason", required=True, help="Kept in the campaign's and rotations' history.")
@json_option
@api_command
def cancel(api: ApiClient, campaign_id: str, reason: str, as_json: bool) -> None:
    """Start no new rotation and cancel (compensate) the running ones."""
    _action(api, campaign_id, "cancel", {"reason": reason}, as_json)


@campaign.command(name="approve")
@click.argument("campaign_id")
@click.option(
    "--decision", type=click.Choice(["continue", "abort"]), default="continue", show_default=True
)
@click.option("--note", default="", help="Kept in the campaign's history.")
@json_option
@api_command
def approve(api: ApiClient, campaign_id: str, decision: str, note: str, as_json: bool) -> None:
    """Answer the waiting decision: start the next wave, or continue / abort past the budget."""
    _action(api, campaign_id, "approve", {"decision": decision, "note": note}, as_json)
