"""`certrotate rotate`: start a rotation from a certificate bundle and the rotation's options."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.exit_codes import EXIT_CODES_EPILOG
from certrotate.client.output import stderr_console
from certrotate.client.passwords import obtain_password, read_secret_file
from certrotate.client.watch import interval_option, watch_rotation

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
    type=click.Path(exists=True, dir_okay=False),
    help="The new certificate with its private key: PKCS#12, JKS or PEM.",
)
@click.option("--bundle-id", help="Or a bundle uploaded before (`certrotate bundles upload`).")
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
@interval_option
@api_command
def rotate(
    api: ApiClient,
    site: str,
    bundle: str | None,
    bundle_id: str | None,
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
    if (bundle is None) == (bundle_id is None):
        raise click.UsageError("give either --bundle FILE or --bundle-id ID")
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
    }
    if bundle is not None:
        body["certificate"] = certificate_upload(bundle, fmt, key, password_file)
    else:
        body["bundle_id"] = bundle_id
    if change_id:
        body["change_id"] = change_id
    if orphan_risk_budget:
        body["orphan_risk_budget_reason"] = reason
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    response = api.request("POST", "/v1/rotations", json=body, headers=headers)
    view = response.json()
    if response.status_code == 200:
        stderr_console().print(
            f"the idempotency key matched rotation {view['id']}: nothing new started"
        )
    click.echo(view["id"])
    if wait:
        raise click.exceptions.Exit(
            watch_rotation(
                api, view["id"], interval=interval, as_json=False, console=stderr_console()
            )
        )
