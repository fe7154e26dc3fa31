"""`certrotate sites import-twin URL`: a running twin's sites and servers in the inventory.

A rehearsal needs every site of the twin registered as an operator would register a real one
(a dozen `sites add` / `servers add` calls otherwise). The twin's control plane describes its
sites, servers, ports, partners and CA; the SEPM account's password is the scenario's, read
from the scenario file or a password file (the twin does not hand it out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import httpx

from certrotate.api_client import ApiClient, ApiRefusedError
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_json
from certrotate.client.passwords import obtain_password
from certrotate.client.sites import sites
from certrotate.twin_inventory import inventory_entries


def _topology(url: str) -> dict[str, Any]:
    endpoint = f"{url.rstrip('/')}/twin/v1/topology"
    try:
        response = httpx.get(endpoint, timeout=30)
        response.raise_for_status()
        topology = response.json()
        if not isinstance(topology, dict) or not isinstance(topology.get("sites"), list):
            raise ValueError("no list of sites")
    except (httpx.HTTPError, ValueError) as exc:
        raise click.ClickException(
            f"cannot read the twin's topology at {endpoint}: {exc or type(exc).__name__} "
            "(is `certrotate sim` running there?)"
        ) from None
    return topology


def _scenario_account(path: str) -> tuple[str, str, str]:
    from sepm_twin.scenario import load_scenario

    try:
        admin = load_scenario(Path(path)).admin
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot use {path}: {exc}", param_hint="--scenario") from None
    return admin.username, admin.password, admin.domain


@sites.command(name="import-twin")
@click.argument("twin_url", metavar="URL")
@click.option(
    "--scenario",
    "scenario_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The scenario the twin runs: its SEPM account and password.",
)
@click.option("--username", help="The twin's SEPM account (default: the twin's).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="That account's password (instead of --scenario).",
)
@json_option
@api_command
def import_twin(
    api: ApiClient,
    twin_url: str,
    scenario_file: str | None,
    username: str | None,
    password_file: str | None,
    as_json: bool,
) -> None:
    """Register every site and server of the twin at URL (rehearsals): sites with their API,
    partners, the twin's CA as trust and its host agent, servers with hostnames and ports."""
    topology = _topology(twin_url)
    account = topology.get("admin") or {}
    if scenario_file:
        user, password, _ = _scenario_account(scenario_file)
        username = username or user
    else:
        username = username or account.get("username")
        if not username:
            raise click.UsageError("the twin names no SEPM account: pass --username")
        password = obtain_password(
            password_file,
            what=f"password of the twin's SEPM account {username}",
            option="--password-file",
        )
    saved: list[dict[str, str]] = []
    for collection, name, body in inventory_entries(topology, username=username, password=password):
        try:
            api.put(f"/v1/{collection}/{name}", body)
        except ApiRefusedError as exc:
            if exc.status != 404:
                raise
            api.post(f"/v1/{collection}", body)
        saved.append({"kind": collection.removesuffix("s"), "name": name})
    if as_json:
        print_json(saved)
        return
    for entry in saved:
        click.echo(f"{entry['kind']} {entry['name']} saved")
