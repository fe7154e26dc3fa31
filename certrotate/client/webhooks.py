"""`certrotate webhooks sources`: senders allowed to trigger rotations (admin role)."""

from __future__ import annotations

from typing import Any

import click

from certrotate import render
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_items, print_json, stderr_console


@click.group()
def webhooks() -> None:
    """Signed webhooks that trigger rotations (Standard Webhooks)."""


@webhooks.group()
def sources() -> None:
    """Senders allowed to trigger rotations, and their signing secrets (admin role)."""


def _show_secret(source: dict[str, Any], as_json: bool, what: str) -> None:
    if as_json:
        print_json(source)
        return
    stderr_console().print(
        f"{what} for source {source['name']} (POST {source['url']}); "
        "it is shown only this once, give it to the sender:"
    )
    click.echo(source["secret"]["secret"])


@sources.command(name="add")
@click.argument("name")
@click.option("--description", default="", help="Who sends (e.g. 'corporate PKI renewals').")
@json_option
@api_command
def sources_add(api: ApiClient, name: str, description: str, as_json: bool) -> None:
    """Register a sender; its signing secret is printed once (stdout)."""
    source = api.post("/v1/webhooks/sources", {"name": name, "description": description})
    _show_secret(source, as_json, "signing secret")


@sources.command(name="list")
@json_option
@api_command
def sources_list(api: ApiClient, as_json: bool) -> None:
    """Every source and how many of its secrets are active (never the secrets)."""
    print_items(
        api.get("/v1/webhooks/sources")["items"],
        as_json=as_json,
        columns=("name", "active secrets", "created", "url", "description"),
        row=_source_row,
    )


def _source_row(source: dict[str, Any]) -> list[str]:
    active = [s for s in source.get("secrets", []) if s.get("active")]
    return [
        str(source.get("name")),
        str(len(active)),
        render.short_time(source.get("created_at")),
        str(source.get("url")),
        str(source.get("description") or ""),
    ]


@sources.command(name="roll")
@click.argument("name")
@click.option(
    "--keep-old-hours",
    type=click.FloatRange(0, 24 * 30),
    default=24.0,
    show_default=True,
    help="How long the secrets in use stay valid, so the sender can switch (0: revoke now).",
)
@json_option
@api_command
def sources_roll(api: ApiClient, name: str, keep_old_hours: float, as_json: bool) -> None:
    """A new signing secret (printed once); the old ones expire after --keep-old-hours."""
    source = api.post(f"/v1/webhooks/sources/{name}/secrets", {"keep_old_hours": keep_old_hours})
    _show_secret(source, as_json, "new signing secret")


@sources.command(name="remove")
@click.argument("name")
@api_command
def sources_remove(api: ApiClient, name: str) -> None:
    """Remove a source and its secrets: its deliveries are refused from now on."""
    api.delete(f"/v1/webhooks/sources/{name}")
    click.echo(f"webhook source {name} removed")
