"""The inventory the rotations act on, by site: `certrotate sites` (its servers: servers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from certrotate.api_client import ApiClient
from certrotate.client.campaigns import maintenance_window, window_options
from certrotate.client.connection import api_command
from certrotate.client.output import (
    json_option,
    print_items,
    print_json,
    print_result,
    stdout_console,
)
from certrotate.client.passwords import account_password
from certrotate.render import add_plain_row


@click.group()
def sites() -> None:
    """SEPM sites in the inventory."""


@sites.command(name="list")
@click.option("--tag", help="Only the sites carrying this tag.")
@json_option
@api_command
def sites_list(api: ApiClient, tag: str | None, as_json: bool) -> None:
    """Every site (or those carrying a tag)."""
    print_items(
        list(api.pages("/v1/sites", tag=tag)),
        as_json=as_json,
        columns=(
            "site",
            "version",
            "api url",
            "partners",
            "servers",
            "driver",
            "credentials",
            "tags",
        ),
        row=_site_row,
        overflow="fold",
    )


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
        ", ".join(site.get("tags") or []),
    ]


@sites.command(name="show")
@click.argument("name")
@json_option
@api_command
def sites_show(api: ApiClient, name: str, as_json: bool) -> None:
    """One site, with everything the inventory holds (never its passwords)."""
    site = api.get(f"/v1/sites/{name}")
    if as_json:
        print_json(site)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in site.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "—"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
        add_plain_row(grid, key, str(value))
    stdout_console().print(grid)


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
@click.option(
    "--tag",
    "tags",
    multiple=True,
    help="A label a campaign can target as tag:<tag> (repeatable); replaces the site's tags.",
)
@window_options
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
    tags: tuple[str, ...],
    window_cron: str | None,
    window_minutes: int | None,
    window_tz: str,
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
        "tags": list(tags),
        "maintenance_window": maintenance_window(window_cron, window_minutes, window_tz),
    }
    password = account_password(
        username,
        password_file,
        account="SEPM",
        username_option="--username",
        file_option="--password-file",
    )
    if password is not None:
        body["sepm_credentials"] = {"username": username, "password": password, "domain": domain}
    host_password = account_password(
        host_username,
        host_password_file,
        account="host",
        username_option="--host-username",
        file_option="--host-password-file",
    )
    if host_password is not None:
        body["host_ops_credentials"] = {"username": host_username, "password": host_password}
    print_result(
        api.post("/v1/sites", body),
        as_json=as_json,
        line=lambda site: f"site {site.get('name', name)} saved",
    )


@sites.command(name="tag")
@click.argument("name")
@click.option("--add", "added", multiple=True, help="A tag to add (repeatable).")
@click.option("--remove", "removed", multiple=True, help="A tag to remove (repeatable).")
@json_option
@api_command
def sites_tag(
    api: ApiClient, name: str, added: tuple[str, ...], removed: tuple[str, ...], as_json: bool
) -> None:
    """Add or remove a site's tags, leaving the rest of the site as it is."""
    current = api.get(f"/v1/sites/{name}").get("tags") or []
    tags = sorted((set(current) | set(added)) - set(removed))
    print_result(
        api.put(f"/v1/sites/{name}/tags", {"tags": tags}),
        as_json=as_json,
        line=lambda site: f"site {name} tags: {', '.join(site.get('tags') or []) or '—'}",
    )


@sites.command(name="remove")
@click.argument("name")
@api_command
def sites_remove(api: ApiClient, name: str) -> None:
    """Remove a site (and the credentials kept for it)."""
    api.delete(f"/v1/sites/{name}")
    click.echo(f"site {name} removed")
