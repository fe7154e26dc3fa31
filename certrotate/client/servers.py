"""The inventory the rotations act on, by server: `certrotate servers` (the SEPM management
servers of each site)."""

from __future__ import annotations

from typing import Any

import click

from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_items, print_result


@click.group()
def servers() -> None:
    """SEPM management servers in the inventory."""


@servers.command(name="list")
@click.option("--site")
@json_option
@api_command
def servers_list(api: ApiClient, site: str | None, as_json: bool) -> None:
    """Every server (or one site's)."""
    print_items(
        list(api.pages("/v1/servers", site=site)),
        as_json=as_json,
        columns=("server", "site", "address", "hostnames", "version", "ports"),
        row=_server_row,
    )


def _server_row(server: dict[str, Any]) -> list[str]:
    ports = server.get("ports") or {}
    return [
        str(server.get("name")),
        str(server.get("site")),
        str(server.get("address")),
        ", ".join(server.get("hostnames") or []),
        str(server.get("version")),
        ", ".join(f"{k}={v}" for k, v in ports.items()),
    ]


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
    print_result(
        api.post("/v1/servers", body),
        as_json=as_json,
        line=lambda server: f"server {server.get('name', name)} saved in site {site}",
    )


@servers.command(name="remove")
@click.argument("name")
@api_command
def servers_remove(api: ApiClient, name: str) -> None:
    """Remove a server from the inventory."""
    api.delete(f"/v1/servers/{name}")
    click.echo(f"server {name} removed")
