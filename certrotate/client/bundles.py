"""`certrotate bundles`: a certificate bundle uploaded once, then named by id (`bundle_id` in
rotations, webhook triggers and campaigns) so the keystore and its password travel once."""

from __future__ import annotations

from typing import Any

import click

from certrotate import render
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_items, print_json, stderr_console
from certrotate.client.rotate import certificate_upload


@click.group()
def bundles() -> None:
    """Certificate bundles uploaded once and named by id."""


@bundles.command(name="upload")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
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
@click.option("--site", help="Check the certificate's names against this site's servers now.")
@click.option("--description", default="", help="What it is for (e.g. 'CHG0042 renewal').")
@json_option
@api_command
def bundles_upload(
    api: ApiClient,
    bundle: str,
    fmt: str,
    key: str | None,
    password_file: str | None,
    site: str | None,
    description: str,
    as_json: bool,
) -> None:
    """Pre-flight a bundle and keep it sealed; prints its id (stdout)."""
    body: dict[str, Any] = {
        **certificate_upload(bundle, fmt, key, password_file),
        "description": description,
    }
    if site:
        body["site"] = site
    stored = api.post("/v1/bundles", body)
    if as_json:
        print_json(stored)
        return
    stderr_console().print(
        f"bundle stored: {stored['subject']}, sha256 {stored['fingerprint_sha256']}, "
        f"valid until {render.short_time(stored.get('not_after'))}; name it as bundle_id:"
    )
    click.echo(stored["id"])


@bundles.command(name="list")
@json_option
@api_command
def bundles_list(api: ApiClient, as_json: bool) -> None:
    """Every uploaded bundle: its id, certificate and names (never the key or password)."""
    print_items(
        api.get("/v1/bundles")["items"],
        as_json=as_json,
        columns=("id", "subject", "sha256", "not after", "names", "uploaded"),
        row=_bundle_row,
    )


def _bundle_row(bundle: dict[str, Any]) -> list[str]:
    return [
        str(bundle.get("id")),
        str(bundle.get("subject")),
        str(bundle.get("fingerprint_sha256", ""))[:16],
        render.short_time(bundle.get("not_after")),
        ", ".join(bundle.get("sans") or []),
        f"{render.short_time(bundle.get('created_at'))} by {bundle.get('uploaded_by')}",
    ]


@bundles.command(name="delete")
@click.argument("bundle_id")
@api_command
def bundles_delete(api: ApiClient, bundle_id: str) -> None:
    """Destroy an uploaded bundle now (rotations already using it keep their own copy)."""
    api.delete(f"/v1/bundles/{bundle_id}")
    click.echo(f"bundle {bundle_id} destroyed")
